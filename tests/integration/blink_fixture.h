/* blink_fixture: the node that the tests of a broker's links
 * (test_broker_wire.c, test_broker_scripts.c) run against: one Redis, one
 * node, debug logs (some tests read them) and a 1 MiB bound on a link's
 * queue (reached on purpose by one test), and the brokers' metrics on
 * ports of their own. A cmocka group setup and teardown,
 * and a raw link to one of its brokers. Include once, after blink.h. */
#ifndef TEST_INTEGRATION_BLINK_FIXTURE_H
#define TEST_INTEGRATION_BLINK_FIXTURE_H

static struct h_fixture fx;
static int g_bport; /* the brokers' BROKER_METRICS_PORT: broker i at g_bport + i */

static int setup(void **state)
{
    (void)state;
    static char bport[48];
    g_bport = h_free_ports(2);
    snprintf(bport, sizeof bport, "BROKER_METRICS_PORT=%d", g_bport);
    const char *const node_env[] = {"LOG_LEVEL=debug", "MAX_LINK_QUEUE_BYTES=1048576", bport, NULL};
    return h_fixture_up(&fx, node_env);
}

static int teardown(void **state)
{
    (void)state;
    return h_fixture_down(&fx);
}

/* A raw link to broker `shard` of the node (blink.h). */
static int link_to(int shard)
{
    return bl_connect(fx.node.run_dir, shard);
}

#endif
