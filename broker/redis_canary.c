/* redis_canary: the delivery canary of a bridge (redis.h, rbridge_canary_ok).
 * Every CANARY_EVERY_MS the publisher connection PUBLISHes a round number on
 * a channel of this bridge's own, which its subscriber connection is
 * subscribed to; a round coming back proves that what is published here
 * reaches the subscribers, which two connections that merely answer PING do
 * not (a subscription wedged after a failover).
 *
 * A round carries a random number besides its own, and counts once: the
 * channel's name can be listed (PUBSUB CHANNELS), and anyone allowed to
 * PUBLISH could otherwise keep a wedged subscription looking healthy by
 * sending round numbers to it. (One who may also SUBSCRIBE to the channel
 * where the rounds go could still relay each round.) */
#include "redis_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "clock.h"
#include "log.h"
#include "validate.h"

#define CANARY_EVERY_MS 5000
#define CANARY_DEADLINE_MS 15000 /* no canary back for this long: delivery is broken */

void rb__canary_send(struct rbridge *b)
{
    if (b->sub.st != C_UP || b->pub.st != C_UP)
        return;
    char round[48];
    uint64_t seq = b->canary_seq + 1, nonce = cf_random_u64();
    int n = snprintf(round, sizeof round, "%llu:%016llx", (unsigned long long)seq,
                     (unsigned long long)nonce);
    const char *argv[] = {"PUBLISH", b->canary, round};
    size_t lens[] = {7, strlen(b->canary), (size_t)n};
    if (rb__queue_past_bound(&b->pub, 3, argv, lens) == 0) {
        b->canary_seq = seq;
        b->canary_sent[seq % CANARY_RING] = cf_mono_ms();
        b->canary_nonce[seq % CANARY_RING] = nonce;
    }
}

bool rb__is_canary(const struct rbridge *b, const redisReply *channel)
{
    return channel->type == REDIS_REPLY_STRING && (size_t)channel->len == strlen(b->canary) &&
           memcmp(channel->str, b->canary, (size_t)channel->len) == 0;
}

/* The canary came back after a silence: said, and the bridge's readiness
 * told again. */
static void back_again(struct rbridge *b)
{
    b->canary_was_ok = true;
    CF_INFO("redis", "delivery canary is coming back (round trip %lld ms)",
            (long long)b->canary_rtt_ms);
    if (b->cbs.on_state)
        b->cbs.on_state(b->ud, b->ready);
}

void rb__canary_back(struct rbridge *b, const char *payload, size_t len)
{
    char round[48];
    if (len >= sizeof round)
        return;
    memcpy(round, payload, len);
    round[len] = '\0';
    char *colon;
    uint64_t got = strtoull(round, &colon, 10);
    if (*colon != ':' || strlen(colon + 1) != 16)
        return;
    uint64_t nonce = strtoull(colon + 1, NULL, 16);
    /* any of the last few rounds counts, so a slow Redis (> 5 s) is not
     * mistaken for a wedged one */
    if (!got || got > b->canary_seq || b->canary_seq - got >= CANARY_RING ||
        nonce != b->canary_nonce[got % CANARY_RING])
        return;
    b->canary_nonce[got % CANARY_RING] = 0; /* once: a round replayed later does not count */
    b->canary_ok_at = cf_mono_ms();
    b->canary_rtt_ms = b->canary_ok_at - b->canary_sent[got % CANARY_RING];
    if (!b->canary_was_ok)
        back_again(b); /* at once, not at the next round */
}

static int on_canary(sd_event_source *s, uint64_t usec, void *ud)
{
    (void)usec;
    struct rbridge *b = ud;
    int64_t now = cf_mono_ms();
    bool ok = rbridge_canary_ok(b);
    if (ok)
        b->canary_resets = 0;
    if (ok && !b->canary_was_ok) {
        back_again(b);
    } else if (!ok && b->canary_was_ok) {
        b->canary_was_ok = false;
        if (b->cbs.on_state)
            b->cbs.on_state(b->ud, b->ready);
    }
    /* Both connections up for a whole deadline, yet nothing came back: a
     * wedged subscription (e.g. after a failover). Resubscribing is the cure;
     * at most once per deadline, so a Redis that is merely slow is not
     * hammered. */
    if (b->ready && now - b->ready_since >= CANARY_DEADLINE_MS &&
        now - b->canary_ok_at > CANARY_DEADLINE_MS &&
        now - b->canary_reset_at >= CANARY_DEADLINE_MS) {
        b->canary_failures++;
        b->canary_reset_at = now;
        /* Each connection looks the name up on its own: after a failover
         * behind a DNS name, a subscriber reset may lead it to the new
         * server while the publisher stays with the old one, and the canary
         * (like every message) goes where nobody listens. When resetting the
         * subscriber did not cure it, the publisher goes too. */
        bool both = ++b->canary_resets % 2 == 0;
        CF_ERROR("redis", "delivery canary has not come back for %d s although Redis looks "
                 "connected; resetting the %s",
                 CANARY_DEADLINE_MS / 1000,
                 both ? "subscriber and publisher connections (a subscriber reset did not cure it)"
                      : "subscriber connection");
        rb__fail(&b->sub, "delivery canary failed");
        if (both)
            rb__fail(&b->pub, "delivery canary failed again after a subscriber reset");
    }
    rb__canary_send(b);
    sd_event_source_set_time_relative(s, (uint64_t)CANARY_EVERY_MS * 1000);
    sd_event_source_set_enabled(s, SD_EVENT_ON);
    return 0;
}

void rb__canary_start(struct rbridge *b, sd_event *ev)
{
    snprintf(b->canary, sizeof b->canary, "confab:canary:%016llx",
             (unsigned long long)cf_random_u64());
    if (sd_event_add_time_relative(ev, &b->canary_timer, CLOCK_MONOTONIC, 1000 * 1000, 100000,
                                   on_canary, b) < 0)
        CF_WARN("redis", "cannot arm the delivery canary timer; readiness will not turn ready");
}

bool rbridge_canary_ok(const struct rbridge *b)
{
    return b->ready && b->canary_ok_at && cf_mono_ms() - b->canary_ok_at <= CANARY_DEADLINE_MS;
}
