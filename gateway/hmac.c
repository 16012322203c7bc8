/* hmac: see hmac.h. */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and friends: hmac.h says why */
#include "hmac.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MAX SHA512_CBLOCK

/* One SHA-2 family member through one interface: SHA-384 shares SHA-512's
 * context and update. */
union sha_ctx {
    SHA256_CTX s256;
    SHA512_CTX s512;
};

struct hmac {
    union sha_ctx inner, outer; /* the hashes of key ^ ipad and key ^ opad */
    int (*init)(union sha_ctx *);
    int (*update)(union sha_ctx *, const void *, size_t);
    int (*final)(unsigned char *, union sha_ctx *);
    size_t size, block;
};

static int i256(union sha_ctx *c)
{
    return SHA256_Init(&c->s256);
}
static int u256(union sha_ctx *c, const void *p, size_t n)
{
    return SHA256_Update(&c->s256, p, n);
}
static int f256(unsigned char *md, union sha_ctx *c)
{
    return SHA256_Final(md, &c->s256);
}
static int i384(union sha_ctx *c)
{
    return SHA384_Init(&c->s512);
}
static int f384(unsigned char *md, union sha_ctx *c)
{
    return SHA384_Final(md, &c->s512);
}
static int i512(union sha_ctx *c)
{
    return SHA512_Init(&c->s512);
}
static int u512(union sha_ctx *c, const void *p, size_t n)
{
    return SHA512_Update(&c->s512, p, n);
}
static int f512(unsigned char *md, union sha_ctx *c)
{
    return SHA512_Final(md, &c->s512);
}

/* The hash of the key padded to a block and xor'ed with `pad`. */
static int pad_state(struct hmac *h, union sha_ctx *c, const unsigned char *key, size_t keylen,
                     unsigned char pad)
{
    unsigned char block[BLOCK_MAX];
    memset(block, 0, sizeof block);
    memcpy(block, key, keylen);
    for (size_t i = 0; i < h->block; i++)
        block[i] ^= pad;
    int ok = h->init(c) && h->update(c, block, h->block);
    OPENSSL_cleanse(block, sizeof block);
    return ok;
}

struct hmac *hmac_new(const char *digest, const unsigned char *key, size_t keylen)
{
    struct hmac h = {0};
    if (!strcmp(digest, "SHA256"))
        h = (struct hmac){.init = i256,
                          .update = u256,
                          .final = f256,
                          .size = SHA256_DIGEST_LENGTH,
                          .block = SHA256_CBLOCK};
    else if (!strcmp(digest, "SHA384"))
        h = (struct hmac){.init = i384,
                          .update = u512,
                          .final = f384,
                          .size = SHA384_DIGEST_LENGTH,
                          .block = SHA512_CBLOCK};
    else if (!strcmp(digest, "SHA512"))
        h = (struct hmac){.init = i512,
                          .update = u512,
                          .final = f512,
                          .size = SHA512_DIGEST_LENGTH,
                          .block = SHA512_CBLOCK};
    else
        return NULL;
    struct hmac *out = malloc(sizeof *out);
    if (!out)
        return NULL;
    *out = h;
    unsigned char hashed[HMAC_MAX_SIZE];
    union sha_ctx c;
    int ok = 1;
    if (keylen > h.block) { /* RFC 2104: a long key is replaced by its hash */
        ok = h.init(&c) && h.update(&c, key, keylen) && h.final(hashed, &c);
        key = hashed;
        keylen = h.size;
    }
    ok = ok && pad_state(out, &out->inner, key, keylen, 0x36) &&
         pad_state(out, &out->outer, key, keylen, 0x5c);
    OPENSSL_cleanse(hashed, sizeof hashed);
    OPENSSL_cleanse(&c, sizeof c);
    if (!ok) {
        hmac_free(out);
        return NULL;
    }
    return out;
}

void hmac_free(struct hmac *h)
{
    if (!h)
        return;
    OPENSSL_cleanse(h, sizeof *h);
    free(h);
}

size_t hmac_size(const struct hmac *h)
{
    return h->size;
}

void hmac_compute(const struct hmac *h, const void *msg, size_t len,
                  unsigned char out[HMAC_MAX_SIZE])
{
    /* The SHA-2 functions fail only on NULL arguments, never given here.
     * The copies on the stack are not wiped: the same secrets stay in *h
     * for as long as the process verifies tokens. */
    union sha_ctx c = h->inner;
    unsigned char in[HMAC_MAX_SIZE];
    h->update(&c, msg, len);
    h->final(in, &c);
    c = h->outer;
    h->update(&c, in, h->size);
    h->final(out, &c);
}
