/* tlsproxy: lets the plain-TCP test clients (httpc, wsc, v1c) talk to a
 * gateway serving TLS. It listens on 127.0.0.1:<port> and, for each
 * connection, opens a TLS session to the gateway, verifying its certificate
 * against `ca_file` and the name "localhost" as a browser would, then copies
 * bytes both ways. It runs in a child process (one grandchild per
 * connection). */
#ifndef TEST_TLSPROXY_H
#define TEST_TLSPROXY_H

#include <sys/types.h>

struct tlsproxy {
    pid_t pid;
    int port; /* where clients connect */
};

/* Forwards to 127.0.0.1:target_port over TLS. 0 or -1. */
int tlsproxy_start(struct tlsproxy *p, int target_port, const char *ca_file);
void tlsproxy_stop(struct tlsproxy *p);

/* One TLS handshake with 127.0.0.1:port verified against ca_file; writes the
 * negotiated protocol version ("TLSv1.3") into out. 0, or -1 when the
 * handshake or the verification fails. */
int tls_probe(int port, const char *ca_file, char *out, size_t cap);

#endif
