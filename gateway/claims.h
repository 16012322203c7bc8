/* claims: the members of a JWT's payload, for auth.c's checks.
 *
 * jansson builds a tree of the payload a byte at a time (its lexer costs
 * ~20 ns a byte here: ~1.1 us for the usual 60-byte payload, a third of a
 * WebSocket handshake's user time). Nearly every payload is a flat object
 * of plain strings and integers ({"sub":"alice","iat":...,"exp":...}), so
 * claims_read first tries a recognizer of exactly that shape, which reads
 * the members in place. Like upgreq.h it is a recognizer, not a parser:
 * anything it is not sure of (an escape, a byte outside ASCII, a real, a
 * literal, an array or object, a duplicate key, an integer of 19 digits or
 * more, more than CLAIMS_MAX members, ...) goes to jansson, which stays the
 * one JSON parser and decides. Both must give the same members for every
 * payload the recognizer takes; tests/fuzz/fuzz_claims.c holds that.
 *
 * hsjwt.c reads a payload only once its signature has passed: what reaches
 * the recognizer was signed with the gateway's key.
 *
 * Ownership: a struct claims is the caller's (it is large: keep it on the
 * stack); claims_read copies the text it recognizes, or keeps jansson's
 * tree. Members returned point into it and live until claims_release. */
#ifndef GW_CLAIMS_H
#define GW_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define CLAIMS_MAX 16          /* members the recognizer takes */
#define CLAIMS_TEXT_MAX 3072   /* the longest payload it takes (AUTH_MAX_TOKEN's) */

enum claim_kind { CLAIM_STRING, CLAIM_INTEGER, CLAIM_REAL, CLAIM_OTHER };

struct claim {
    enum claim_kind kind;
    const char *s; /* CLAIM_STRING: the value, s[n] == '\0', no NUL inside */
    size_t n;
    int64_t i;     /* CLAIM_INTEGER */
    double r;      /* CLAIM_REAL */
    json_t *j;     /* CLAIM_OTHER (arrays, objects, literals): borrowed */
};

struct claims {
    json_t *doc;   /* jansson's tree when the recognizer declined; else NULL */
    unsigned n;
    struct {
        const char *key;
        size_t key_len;
        struct claim v;
    } m[CLAIMS_MAX];
    char text[CLAIMS_TEXT_MAX + 1];
};

/* Reads `len` bytes of JSON. 0: a JSON object, its members in c; -1: not
 * one (or out of memory), c holds nothing to release. */
int claims_read(struct claims *c, const char *json, size_t len);

/* Only the recognizer: true when it took the text (c then as above),
 * false when it would have gone to jansson. For the tests. */
bool claims_recognize(struct claims *c, const char *json, size_t len);

/* Takes a JSON object already parsed (its reference, even on failure).
 * 0, or -1 when it is not an object. */
int claims_adopt(struct claims *c, json_t *doc);

/* The member named key (NUL-terminated): true and *out set, or false. */
bool claims_get(const struct claims *c, const char *key, struct claim *out);

void claims_release(struct claims *c);

#endif
