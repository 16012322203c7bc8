/* servers: a fixture of several Redis servers and one node on them, for the
 * tests of a broker with more than one server. Include after common.h. */
#ifndef TEST_INTEGRATION_SERVERS_H
#define TEST_INTEGRATION_SERVERS_H

/* Starts n servers (their REDIS_ADDR list written to list) and a node on
 * them with `brokers` brokers and the settings env (NULL terminated, at most
 * H_MAX_ENV - 1 of them; NULL: none). The node's logs are printed when it
 * does not start. */
static inline int sv_up(struct h_redis *r, int n, char *list, size_t cap, struct h_node *node,
                        int brokers, const char *const env[])
{
    if (h_redis_start_list(r, n, list, cap) < 0)
        return -1;
    h_node_init(node, list);
    node->brokers = brokers;
    for (int i = 0; env && env[i]; i++) {
        assert_true(i < H_MAX_ENV - 1);
        node->extra_env[i] = env[i];
    }
    if (h_node_start(node) < 0) {
        h_node_dump_logs(node);
        return -1;
    }
    return 0;
}

/* Prints the node's logs and stops it and the servers (a no-op for one a
 * test stopped); -1 when a process failed h_node_stop's checks. */
static inline int sv_down(struct h_redis *r, int n, struct h_node *node)
{
    h_node_dump_logs(node);
    int bad = h_node_stop(node);
    for (int i = 0; i < n; i++)
        h_redis_stop(&r[i]);
    return bad ? -1 : 0;
}

#endif
