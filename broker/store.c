/* store: see store.h. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "bytes.h"
#include "clock.h"
#include "fmt.h"
#include "freelist.h"
#include "log.h"
#include "rbatch.h"
#include "ring.h"
#include "validate.h"

/* ---- the scripts ----------------------------------------------------------
 * Redis runs Lua 5.1; numbers are doubles, exact up to 2^53, far beyond any
 * id or millisecond time here. The msgpack they produce is written by hand
 * (a fixed shape), so it does not depend on cmsgpack's table heuristics. */

#define PRELUDE                                                                                    \
    "local function mp_str(s)\n"                                                                   \
    "  local n = #s\n"                                                                             \
    "  if n < 32 then return string.char(160 + n) .. s end\n"                                      \
    "  if n < 256 then return '\\217' .. string.char(n) .. s end\n"                                \
    "  return '\\218' .. string.char(math.floor(n / 256), n % 256) .. s\n"                         \
    "end\n"                                                                                        \
    "local function mp_u64(v)\n"                                                                   \
    "  local hi = math.floor(v / 4294967296)\n"                                                    \
    "  return '\\207' .. struct.pack('>I4I4', hi, v - hi * 4294967296)\n"                          \
    "end\n"

/* Presence helpers; expect KEYS pz, pu, pc, pv at K.pz... and the channel,
 * the room, the TTL, C.nows (NOW_MS as a string) and C.exp (now + TTL, as a
 * string) in C.
 *
 * NOW_MS is Redis' clock, read once per script call: an entry's expiry is
 * compared with the time of whichever node sweeps the room, and with each
 * node's own clock a node running ~2/3 of PRESENCE_TTL behind another had
 * its members swept by that one at every refresh (leave and join again). The
 * callers still pass their own time in ARGV; it is not used.
 *
 * drop and add set C.wrote when they changed the room's keys; keep sets the
 * keys' TTLs to keep_s seconds; announce leaves the version and member count
 * it published in C.pv_now and C.count_now (nothing else in a script changes
 * them after it).
 *
 * Numbers go to redis.call as strings: Redis formats a Lua number argument
 * with "%.17g" on every call, ~2 k instructions (callgrind), which a member
 * refresh paid per member and a send once (HINCRBY's 1). */
#define PRESENCE                                                                                   \
    "local NOW_MS, NOW_S\n"                                                                         \
    "do\n"                                                                                          \
    "  local t = redis.call('TIME')\n"                                                              \
    "  NOW_MS = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                       \
    "  NOW_S = string.format('%d', NOW_MS)\n"                                                       \
    "end\n"                                                                                         \
    "local function announce(C, user, action)\n"                                                   \
    "  local pv = redis.call('INCR', C.pv)\n"                                                      \
    "  local count = redis.call('HLEN', C.pc)\n"                                                   \
    "  C.pv_now, C.count_now = pv, count\n"                                                        \
    "  redis.call('PUBLISH', C.chan, '\\135' .. mp_str('v') .. '\\1' .. mp_str('t') ..\n"          \
    "    mp_str('presence') .. mp_str('room') .. mp_str(C.room) .. mp_str('user') ..\n"            \
    "    mp_str(user) .. mp_str('action') .. mp_str(action) .. mp_str('count') ..\n"               \
    "    mp_u64(count) .. mp_str('pv') .. mp_u64(pv))\n"                                           \
    "end\n"                                                                                        \
    "local function drop(C, conn)\n"                                                               \
    "  if redis.call('ZREM', C.pz, conn) == 0 then return end\n"                                   \
    "  C.wrote = true\n"                                                                           \
    "  local u = redis.call('HGET', C.pu, conn)\n"                                                 \
    "  redis.call('HDEL', C.pu, conn)\n"                                                           \
    "  if not u then return end\n"                                                                 \
    "  if redis.call('HINCRBY', C.pc, u, '-1') <= 0 then\n"                                        \
    "    redis.call('HDEL', C.pc, u)\n"                                                            \
    "    announce(C, u, 'leave')\n"                                                                \
    "  end\n"                                                                                      \
    "end\n"                                                                                        \
    "local function add(C, conn, user)\n"                                                          \
    "  if redis.call('ZADD', C.pz, C.exp, conn) == 0 then return end\n"                            \
    "  C.wrote = true\n"                                                                           \
    "  redis.call('HSET', C.pu, conn, user)\n"                                                     \
    "  if redis.call('HINCRBY', C.pc, user, '1') == 1 then announce(C, user, 'join') end\n"        \
    "end\n"                                                                                        \
    "local function sweep(C)\n"                                                                    \
    "  local dead = redis.call('ZRANGEBYSCORE', C.pz, '-inf', C.nows, 'LIMIT', '0', '200')\n"      \
    "  for _, c in ipairs(dead) do drop(C, c) end\n"                                               \
    "end\n"                                                                                        \
    "local function keep_s(C) return math.floor(C.ttl / 1000) * 3 + 60 end\n"                      \
    "local function keep(C)\n"                                                                     \
    "  local s = string.format('%d', keep_s(C))\n"                                                 \
    "  redis.call('EXPIRE', C.pz, s); redis.call('EXPIRE', C.pu, s)\n"                             \
    "  redis.call('EXPIRE', C.pc, s); redis.call('EXPIRE', C.pv, s)\n"                             \
    "end\n"

/* A batch of sends (rbatch.h): per call KEYS meta hist [dedup]; ARGV chan
 * prefix ts hsize keep dttl epoch touch slack, after the call's two counts.
 *
 * Every command a script calls costs Redis about a microsecond, and this
 * runs for every message: it calls four in the common case (HGET, HINCRBY,
 * RPUSH, PUBLISH). The TTLs are set only when `touch` is 1 (store_send asks
 * for it at most once per TOUCH per room) or a key was just made; the list is
 * trimmed back to hsize only once it has grown `slack` past it (readers look
 * at its newest hsize entries).
 *
 * Each send's reply is its id, or for a repeat of an accepted send the
 * original "id:ts": tables built for each reply, and the payload built in
 * several pieces, cost Redis more than any one of the commands (batches of
 * 46 in `redis-benchmark`: 5.0 -> 4.1 µs a send).
 *
 * A send that fails keeps the sends before it, which are stored and
 * published and get their ids; the sends after it are not run and fail
 * too. When nothing was written before it (it came first, or after repeats
 * only), the whole batch gets its error as the reply, as a lone send would,
 * so the bridge still sees the errors that mean it must reconnect
 * (READONLY after a failover: a replica refuses a batch's first write). */
static const char script_send[] =
    PRELUDE
    "local function send(km, kh, kd, a)\n"
    "  local d = kd and redis.call('GET', kd)\n"
    "  if d and string.match(d, '^%d+:%d+$') then return d end\n"
    "  local touch = ARGV[a + 7] == '1'\n"
    "  local epoch = redis.call('HGET', km, 'epoch')\n"
    "  if not epoch then\n"
    "    epoch = ARGV[a + 6]\n"
    "    redis.call('HSET', km, 'epoch', epoch, 'seq', 0)\n"
    "    redis.call('DEL', kh)\n"
    "    touch = true\n"
    "  end\n"
    "  local id = redis.call('HINCRBY', km, 'seq', '1')\n"
    "  local payload\n"
    "  if #epoch == 16 then\n"
    "    local hi = math.floor(id / 4294967296)\n"
    "    payload = ARGV[a + 1] .. '\\165epoch\\176' .. epoch .. '\\162id' ..\n"
    "      struct.pack('>BI4I4', 207, hi, id - hi * 4294967296)\n"
    "  else\n"
    "    payload = ARGV[a + 1] .. '\\165epoch' .. mp_str(epoch) .. '\\162id' .. mp_u64(id)\n"
    "  end\n"
    "  local hsize = tonumber(ARGV[a + 3])\n"
    "  if hsize > 0 then\n"
    "    local len = redis.call('RPUSH', kh, payload)\n"
    "    if len > hsize + tonumber(ARGV[a + 8]) then redis.call('LTRIM', kh, -hsize, -1) end\n"
    "    if touch or len == 1 then redis.call('EXPIRE', kh, ARGV[a + 4]) end\n"
    "  else\n"
    "    redis.call('DEL', kh) -- the list must hold exactly the newest ids\n"
    "  end\n"
    "  if touch then redis.call('EXPIRE', km, ARGV[a + 4]) end\n"
    "  redis.call('PUBLISH', ARGV[a], payload)\n"
    "  if kd then\n"
    "    redis.call('SET', kd, string.format('%d:%s', id, ARGV[a + 2]), 'EX', ARGV[a + 5])\n"
    "  end\n"
    "  return id\n"
    "end\n"
    "local out, k, a, failed, wrote = {}, 1, 1, nil, false\n"
    "while a <= #ARGV do\n"
    "  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])\n"
    "  if failed then\n"
    "    out[#out + 1] = redis.error_reply('ERR not run: an earlier send in its batch failed')\n"
    "  else\n"
    "    local ok, r = pcall(send, KEYS[k], KEYS[k + 1], nk == 3 and KEYS[k + 2] or nil, a + 2)\n"
    "    if ok then\n"
    "      out[#out + 1] = r\n"
    "      wrote = wrote or type(r) == 'number'\n"
    "    else\n"
    "      failed = type(r) == 'table' and r.err or tostring(r)\n"
    "      if not wrote then return redis.error_reply(failed) end\n"
    "      out[#out + 1] = redis.error_reply(failed)\n"
    "    end\n"
    "  end\n"
    "  k, a = k + nk, a + 2 + na\n"
    "end\n"
    "return out\n";

/* The history list may run up to `slack` entries past hsize (script_send);
 * readers see its newest hsize. `base` is the id at list index 0, `first`
 * the oldest id a reader sees. Expects `last` and `hsize`. */
#define HIST_WINDOW                                                                                \
    "local len = redis.call('LLEN', KEYS[2])\n"                                                    \
    "local base = last - len + 1\n"                                                                \
    "if len > hsize then len = hsize end\n"                                                        \
    "local first = last - len + 1\n"

/* KEYS meta hist pz pu pc pv; ARGV chan room conn user now ttl keep
 * epoch since cepoch limit mcap hsize touch budget
 *
 * The messages come from the newest back, in LRANGEs of 64, 128, ... (a
 * usual join's 50 in one, as before), until they
 * would pass `budget` bytes (each counted with 8 bytes of framing, as
 * broker.c's fit does): a recovery used to read everything after `since`
 * (up to HISTORY_SIZE messages of MAX_MESSAGE_BYTES, hundreds of MB at the
 * limits), which Redis built and the broker buffered, only for the broker to
 * keep what fits. A recovery cut short is no recovery.
 *
 * Each command a script calls costs Redis its lookup, its arguments and its
 * accounting besides its work: in a connect storm a join took 41 us of Redis
 * for ~20 commands. So the history keys' TTLs are set only when `touch` is 1
 * (as for sends: at most once per TOUCH per room and broker) or the room's
 * meta was just made; the presence keys' TTLs only once half of theirs has
 * run out (a key just made has none), as the refresh does; the meta is read
 * once; and the version and count an announce just read are not read
 * again: ~11 commands. */
static const char script_join[] =
    PRELUDE PRESENCE
    "local C = {pz = KEYS[3], pu = KEYS[4], pc = KEYS[5], pv = KEYS[6], chan = ARGV[1],\n"
    "  room = ARGV[2], now = NOW_MS, ttl = tonumber(ARGV[6]),\n"
    "  nows = NOW_S}\n"
    "C.exp = string.format('%d', C.now + C.ttl)\n"
    "local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')\n"
    "local epoch, last, touch = meta[1], tonumber(meta[2] or '0'), ARGV[14] == '1'\n"
    "if not epoch then\n"
    "  epoch, last, touch = ARGV[8], 0, true\n"
    "  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "if touch then\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[7])\n"
    "  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[7]) end\n"
    "end\n"
    "sweep(C)\n"
    "add(C, ARGV[3], ARGV[4])\n"
    "if redis.call('TTL', C.pz) < keep_s(C) / 2 then keep(C) end\n"
    "local hsize = tonumber(ARGV[13])\n"
    HIST_WINDOW
    "local since = tonumber(ARGV[9])\n"
    "local limit = tonumber(ARGV[11])\n"
    "local budget = tonumber(ARGV[15])\n"
    "local function tail(want)\n"
    "  local got, used, rev, step = 0, 0, {}, 64\n"
    "  local cut = false\n"
    "  while got < want and not cut do\n"
    "    local n = math.min(step, want - got)\n"
    "    local part = redis.call('LRANGE', KEYS[2], -(got + n), -(got + 1))\n"
    "    for i = #part, 1, -1 do\n"
    "      used = used + #part[i] + 8\n"
    "      if used > budget then cut = true break end\n"
    "      rev[#rev + 1] = part[i]\n"
    "    end\n"
    "    if #part < n then break end\n"
    "    got, step = got + n, step * 2\n"
    "  end\n"
    "  local out = {}\n"
    "  for i = #rev, 1, -1 do out[#out + 1] = rev[i] end\n"
    "  return out, cut\n"
    "end\n"
    "local recovered, msgs, cut = 0, {}, false\n"
    "if since >= 0 and ARGV[10] == epoch and since <= last and since + 1 >= first then\n"
    "  recovered = 1\n"
    "  if since < last then\n"
    "    msgs, cut = tail(last - since)\n"
    "    if cut then recovered = 0 end\n"
    "  end\n"
    "elseif limit > 0 and len > 0 then\n"
    "  if limit > len then limit = len end\n"
    "  msgs = tail(limit)\n"
    "end\n"
"local count = C.count_now or redis.call('HLEN', C.pc)\n"
    "local mcap = tonumber(ARGV[12])\n"
    "local members\n"
    "if count <= mcap then members = redis.call('HKEYS', C.pc)\n"
    "else\n"
    "  members = {}\n"
    "  local cur = '0'\n"
    "  repeat\n"
    "    local r = redis.call('HSCAN', C.pc, cur, 'COUNT', mcap)\n"
    "    cur = r[1]\n"
    "    for i = 1, #r[2], 2 do\n"
    "      if #members < mcap then members[#members + 1] = r[2][i] end\n"
    "    end\n"
    "  until cur == '0' or #members >= mcap\n"
    "end\n"
    "local pv = C.pv_now or tonumber(redis.call('GET', C.pv) or '0')\n"
    "return {epoch, last, pv, count, recovered, members, msgs}\n";

/* KEYS pz pu pc pv; ARGV chan room now ttl conn */
static const char script_leave[] =
    PRELUDE PRESENCE
    "local C = {pz = KEYS[1], pu = KEYS[2], pc = KEYS[3], pv = KEYS[4], chan = ARGV[1],\n"
    "  room = ARGV[2], now = NOW_MS, ttl = tonumber(ARGV[4]),\n"
    "  nows = NOW_S}\n"
    "drop(C, ARGV[5])\n"
    "sweep(C)\n"
    "return 0\n";

/* A batch of refreshes (rbatch.h): per call KEYS pz pu pc pv; ARGV chan
 * room now ttl (conn user)..., after the call's two counts.
 *
 * This runs for every room on every node with members in it, once per
 * PRESENCE_TTL/3: at scale it is most of a Redis server's work, more than
 * the sends (docs/scaling.md). So the rooms of a heartbeat slice share
 * script calls (a call's own cost, its arguments made into Lua strings and
 * the script set up, was most of a small room's refresh), the members'
 * expiries move in one ZADD (each is checked alone only when that ZADD
 * changed fewer than all: someone was missing), and the keys' TTLs are set
 * again only once half of theirs has run out, or when the refresh wrote a
 * key (a new key has no TTL): 3 commands for a room found in place, where it
 * was 5 + 1 a member. A refresh that fails does not stop the others. */
static const char script_refresh[] =
    PRELUDE PRESENCE
    "local function refresh(k, a, na)\n"
    "  local C = {pz = KEYS[k], pu = KEYS[k + 1], pc = KEYS[k + 2], pv = KEYS[k + 3],\n"
    "    chan = ARGV[a], room = ARGV[a + 1], now = NOW_MS,\n"
    "    ttl = tonumber(ARGV[a + 3]), nows = NOW_S}\n"
    "  C.exp = string.format('%d', C.now + C.ttl)\n"
    "  sweep(C)\n"
    "  local z, n = {}, 0\n"
    "  for i = a + 4, a + na - 2, 2 do\n"
    "    z[#z + 1] = C.exp\n"
    "    z[#z + 1] = ARGV[i]\n"
    "    n = n + 1\n"
    "  end\n"
    "  if n > 0 and redis.call('ZADD', C.pz, 'XX', 'CH', unpack(z)) < n then\n"
    "    for i = a + 4, a + na - 2, 2 do -- some were not there: expired, or the keys lost\n"
    "      if not redis.call('ZSCORE', C.pz, ARGV[i]) then add(C, ARGV[i], ARGV[i + 1]) end\n"
    "    end\n"
    "  end\n"
    "  if C.wrote or redis.call('TTL', C.pz) < keep_s(C) / 2 then\n"
    "    keep(C)\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "local out, k, a = {}, 1, 1\n"
    "while a <= #ARGV do\n"
    "  local nk, na = tonumber(ARGV[a]), tonumber(ARGV[a + 1])\n"
    "  local ok, r = pcall(refresh, k, a + 2, na)\n"
    "  out[#out + 1] = ok and r or redis.error_reply(type(r) == 'table' and r.err or tostring(r))\n"
    "  k, a = k + nk, a + 2 + na\n"
    "end\n"
    "return out\n";

/* KEYS meta hist; ARGV before limit hsize */
static const char script_history[] =
    "local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
    "local hsize = tonumber(ARGV[3])\n"
    HIST_WINDOW
"local hi = last\n"
    "local before = tonumber(ARGV[1])\n"
    "if before >= 0 and before - 1 < hi then hi = before - 1 end\n"
    "local limit = tonumber(ARGV[2])\n"
    "if hi < first then return {{}, 0} end\n"
    "if limit == 0 then return {{}, 1} end\n"
    "local lo = hi - limit + 1\n"
    "if lo < first then lo = first end\n"
    "local msgs = redis.call('LRANGE', KEYS[2], lo - base, hi - base)\n"
    "local more = 0\n"
    "if lo > first then more = 1 end\n"
    "return {msgs, more}\n";

/* KEYS throttle; ARGV chan payload gap_ms: one typing event per user and
 * room per gap, across every node. */
static const char script_typing[] =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then\n"
    "  redis.call('PUBLISH', ARGV[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

enum { S_SEND, S_JOIN, S_LEAVE, S_REFRESH, S_HISTORY, S_TYPING, S_COUNT };
const char *const store_scripts[S_COUNT] = {script_send,    script_join,    script_leave,
                                            script_refresh, script_history, script_typing};
const int store_nscripts = S_COUNT;

/* ---- helpers ------------------------------------------------------------ */

#define KEY_MAX (CF_ROOM_MAX + 16)

/* Keys, channels and epochs are put together by hand: snprintf parses its
 * format on every call, and these run four times a send (~1.5 k
 * instructions each under callgrind, 9 % of the broker's work per message).
 * Room names are valid here, so at most CF_ROOM_MAX long. */
static size_t put(char *out, size_t n, const char *s, size_t len)
{
    memcpy(out + n, s, len);
    return n + len;
}

static size_t put_room(char *out, size_t n, struct cf_str room)
{
    return put(out, n, room.p, room.len < CF_ROOM_MAX ? room.len : CF_ROOM_MAX);
}

static size_t room_key(char *out, struct cf_str room, const char *what)
{
    size_t n = put(out, 0, "cf:{", 4);
    n = put_room(out, n, room);
    n = put(out, n, "}:", 2);
    n = put(out, n, what, strlen(what)); /* at most 4 */
    out[n] = '\0';
    return n;
}

static size_t channel(char *out, struct cf_str room)
{
    size_t n = put(out, 0, "room:", 5);
    n = put_room(out, n, room);
    out[n] = '\0';
    return n;
}

/* 16 lowercase hex digits, CF_WIRE_EPOCH_LEN: brokers drop a msg on Redis
 * whose epoch has another shape (cf_wire_room_event), so the send script's
 * branch for other lengths only serves epochs nobody writes. */
static void new_epoch(char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t v = cf_random_u64();
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
    out[16] = '\0';
}

/* ---- TTLs ----------------------------------------------------------------
 * A room's keys outlive its last activity by HISTORY_TTL. Setting both TTLs
 * on every send cost two of its seven commands, so each broker process sets
 * them at most once per TOUCH = HISTORY_TTL / 8 per room (script_send's
 * `touch`), to HISTORY_TTL + TOUCH: a message sent up to TOUCH after the last
 * touch still has HISTORY_TTL ahead of it. A join sets them the same way (its
 * `touch`, counted with the sends').
 *
 * When this process last touched a room: a direct-mapped table, so memory is
 * fixed; two rooms in one slot only cost an extra touch. A send that failed
 * may not have touched, nor does a duplicate: either makes every entry stale
 * (g_touch_gen). */
#define TOUCH_SLOTS 4096

struct touch {
    uint64_t key;
    int64_t at_ms;
    uint32_t gen;
};
static struct touch g_touch[TOUCH_SLOTS];
static uint32_t g_touch_gen = 1;

static uint32_t touch_every_ms(const struct store_limits *lim)
{
    return lim->history_ttl_s / 8 * 1000;
}

static int64_t keep_s(const struct store_limits *lim)
{
    return (int64_t)lim->history_ttl_s + lim->history_ttl_s / 8;
}

/* Whether this send should set the TTLs; counts it as done. */
static bool touch_due(struct cf_str room, const struct store_limits *lim)
{
    uint64_t key = cf_ring_key(room.p, room.len);
    int64_t now = cf_mono_ms();
    struct touch *t = &g_touch[key % TOUCH_SLOTS];
    if (t->gen == g_touch_gen && t->key == key && now - t->at_ms < touch_every_ms(lim))
        return false;
    t->key = key;
    t->at_ms = now;
    t->gen = g_touch_gen;
    return true;
}

static void touch_unsure(void)
{
    g_touch_gen++;
}

void store_forget_touches(void)
{
    touch_unsure();
}

/* A growing argv: strings are either borrowed or formatted into `num`. */
struct args {
    const char *v[64];
    size_t l[64];
    char num[16][24];
    int n, nn;
};

static void arg(struct args *a, const char *p, size_t len)
{
    a->v[a->n] = p;
    a->l[a->n] = len;
    a->n++;
}

static void arg_str(struct args *a, struct cf_str s)
{
    arg(a, s.p ? s.p : "", s.len);
}

static void arg_num(struct args *a, int64_t v)
{
    char *p = a->num[a->nn++];
    arg(a, p, cf_fmt_i64(p, v));
}

static bool int_of(const redisReply *r, int64_t *out)
{
    if (!r || r->type != REDIS_REPLY_INTEGER)
        return false;
    *out = r->integer;
    return true;
}

/* Points a cf_str array at the string elements of an array reply. */
static struct cf_str *strings_of(const redisReply *r, uint32_t *n)
{
    *n = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements > CF_WIRE_MAX_ITEMS)
        return NULL;
    struct cf_str *v = calloc(r->elements ? r->elements : 1, sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            free(v);
            return NULL;
        }
        v[i] = (struct cf_str){e->str, (uint32_t)e->len};
    }
    *n = (uint32_t)r->elements;
    return v;
}

static int err_of(const redisReply *r)
{
    return r ? -EIO : -ECONNRESET;
}

/* A small heap box carrying the caller's callback through rbridge. */
struct box {
    void (*fn)(void);
    void *ud;
    int64_t ts; /* a send's time, which its reply leaves out */
};

/* a box per request: recycled, not malloc'd per message */
static struct cf_freelist g_boxes = CF_FREELIST_INIT(sizeof(struct box), 1024);

static void box_free(struct box *b)
{
    cf_fl_put(&g_boxes, b);
}

static struct box *box_new(void (*fn)(void), void *ud)
{
    struct box *b = cf_fl_get(&g_boxes);
    if (b)
        *b = (struct box){fn, ud, 0};
    return b;
}

static int eval(struct rbridge *rb, int script, struct args *a, rbridge_reply_fn done,
                struct box *box)
{
    if (!box && done)
        return -ENOMEM;
    /* no bridge: the room's Redis server is not usable (rset_for) */
    int rc = rb ? rbridge_eval(rb, script, a->n, a->v, a->l, done, box) : -ENOTCONN;
    if (rc < 0)
        box_free(box);
    return rc;
}

/* ---- send --------------------------------------------------------------- */

/* A digit string of at most 18 digits (so that it fits an int64_t). */
static bool digits_of(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* A send's reply: its id (sent at `ts`), or "id:ts" of the earlier send it
 * repeats. */
static bool sent_of(const redisReply *r, int64_t ts, struct store_sent *out)
{
    int64_t id = 0;
    bool dup = r && r->type == REDIS_REPLY_STRING;
    bool ok = false;
    if (r && r->type == REDIS_REPLY_INTEGER) {
        id = r->integer;
        ok = id > 0;
    } else if (dup) {
        const char *colon = memchr(r->str, ':', r->len);
        ok = colon && digits_of(r->str, (size_t)(colon - r->str), &id) &&
             digits_of(colon + 1, r->len - (size_t)(colon + 1 - r->str), &ts) && id > 0;
    }
    if (!ok || dup)
        touch_unsure(); /* failed, or answered before the TTLs were set */
    if (ok)
        *out = (struct store_sent){(uint64_t)id, ts, dup};
    return ok;
}

static void sent_reply(void *ud, const redisReply *r)
{
    struct box *b = ud;
    store_sent_fn fn = (store_sent_fn)b->fn;
    struct store_sent s;
    if (sent_of(r, b->ts, &s))
        fn(b->ud, 0, &s);
    else
        fn(b->ud, err_of(r), NULL);
    box_free(b);
}

/* A send nobody waits for (a legacy client's) */
static void sent_quietly(void *ud, const redisReply *r)
{
    (void)ud;
    struct store_sent s;
    sent_of(r, 0, &s);
}

/* Sends go through the bridge's batcher (rbatch.h), made with the first.
 * box: the caller's, or NULL for a send nobody waits for. */
static int batch(struct rbridge *rb, int script, int nkeys, struct args *a, rbridge_reply_fn done,
                 struct box *box)
{
    struct rbatch *q = rb ? rbatch_of(rb) : NULL;
    if (rb && !q)
        q = rbatch_new(rb);
    int rc = !rb      ? -ENOTCONN
             : !q     ? -ENOMEM
                      : rbatch_add(q, script, nkeys, a->n, a->v, a->l, done, box);
    if (rc < 0 && box)
        box_free(box);
    return rc;
}

int store_send(struct rbridge *rb, const struct store_limits *lim, const struct cf_wire_msg *m,
               struct cf_str cid, store_sent_fn fn, void *ud)
{
    /* One buffer for every send of this (single-threaded) process: the
     * batcher copies the arguments, so it is free again when that returns. */
    static struct cf_bytes prefix = {.max = CF_WIRE_MAX_FRAME};
    cf_bytes_truncate(&prefix, 0);
    int rc = cf_wire_msg_prefix(&prefix, m);
    if (rc < 0)
        return rc;
    char k_meta[KEY_MAX], k_hist[KEY_MAX], chan[KEY_MAX], epoch[17];
    char k_dd[KEY_MAX + 2 * CF_WIRE_MAX_TOKEN + 24];
    struct args a = {0};
    bool dedup = cid.len > 0;
    arg(&a, k_meta, room_key(k_meta, m->room, "meta"));
    arg(&a, k_hist, room_key(k_hist, m->room, "hist"));
    if (dedup) {
        /* the user's length first: names may contain ':' */
        int n = snprintf(k_dd, sizeof k_dd, "cf:{%.*s}:dd:%u:%.*s:%.*s", (int)m->room.len,
                         m->room.p, m->from.len, (int)m->from.len, m->from.p, (int)cid.len, cid.p);
        arg(&a, k_dd, (size_t)n);
    }
    arg(&a, chan, channel(chan, m->room));
    arg(&a, (const char *)cf_bytes_data(&prefix), cf_bytes_len(&prefix));
    arg_num(&a, m->ts);
    arg_num(&a, lim->history_size);
    arg_num(&a, keep_s(lim));
    arg_num(&a, lim->dedup_window_s);
    new_epoch(epoch);
    arg(&a, epoch, 16);
    bool touch = touch_due(m->room, lim);
    arg(&a, touch ? "1" : "0", 1);
    arg_num(&a, lim->history_size / 8);
    struct box *box = fn ? box_new((void (*)(void))fn, ud) : NULL;
    if (box)
        box->ts = m->ts;
    rc = fn && !box ? -ENOMEM
                    : batch(rb, S_SEND, dedup ? 3 : 2, &a, fn ? sent_reply : sent_quietly, box);
    if (rc < 0 && touch)
        touch_unsure(); /* refused before Redis saw it: the TTLs were not set */
    return rc;
}

/* ---- join --------------------------------------------------------------- */

static void joined_reply(void *ud, const redisReply *r)
{
    struct box *b = ud;
    store_joined_fn fn = (store_joined_fn)b->fn;
    struct store_joined j = {0};
    int64_t last, pv, count, rec;
    struct cf_str *members = NULL, *msgs = NULL;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 7 &&
              r->element[0]->type == REDIS_REPLY_STRING && int_of(r->element[1], &last) &&
              int_of(r->element[2], &pv) && int_of(r->element[3], &count) &&
              int_of(r->element[4], &rec) && last >= 0 && pv >= 0 && count >= 0;
    if (ok) {
        members = strings_of(r->element[5], &j.nmembers);
        msgs = strings_of(r->element[6], &j.nmessages);
        ok = members && msgs;
    }
    if (ok) {
        j.epoch = (struct cf_str){r->element[0]->str, (uint32_t)r->element[0]->len};
        j.last_id = (uint64_t)last;
        j.pv = (uint64_t)pv;
        j.count = (uint64_t)count;
        j.recovered = rec != 0;
        j.members = members;
        j.messages = msgs;
        fn(b->ud, 0, &j);
    } else {
        touch_unsure(); /* the script may have stopped before the TTLs */
        fn(b->ud, r && r->type != REDIS_REPLY_ERROR ? -EPROTO : err_of(r), NULL);
    }
    free(members);
    free(msgs);
    box_free(b);
}

static void presence_keys(struct args *a, char k[4][KEY_MAX], struct cf_str room)
{
    static const char *const what[4] = {"pz", "pu", "pc", "pv"};
    for (int i = 0; i < 4; i++)
        arg(a, k[i], room_key(k[i], room, what[i]));
}

int store_join(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
               struct cf_str conn, struct cf_str user, bool has_since, uint64_t since,
               struct cf_str epoch, uint32_t limit, uint32_t budget, uint32_t max_members,
               store_joined_fn fn, void *ud)
{
    char k_meta[KEY_MAX], k_hist[KEY_MAX], pk[4][KEY_MAX], chan[KEY_MAX];
    char cand[17];
    struct args a = {0};
    arg_num(&a, 6);
    arg(&a, k_meta, room_key(k_meta, room, "meta"));
    arg(&a, k_hist, room_key(k_hist, room, "hist"));
    presence_keys(&a, pk, room);
    arg(&a, chan, channel(chan, room));
    arg_str(&a, room);
    arg_str(&a, conn);
    arg_str(&a, user);
    arg_num(&a, cf_wall_ms());
    arg_num(&a, lim->presence_ttl_ms);
    arg_num(&a, keep_s(lim));
    new_epoch(cand);
    arg(&a, cand, 16);
    arg_num(&a, has_since && since <= INT64_MAX ? (int64_t)since : -1);
    arg_str(&a, epoch);
    arg_num(&a, limit);
    arg_num(&a, max_members);
    arg_num(&a, lim->history_size);
    bool touch = touch_due(room, lim);
    arg(&a, touch ? "1" : "0", 1);
    arg_num(&a, budget);
    int rc = eval(rb, S_JOIN, &a, joined_reply, box_new((void (*)(void))fn, ud));
    if (rc < 0 && touch)
        touch_unsure(); /* refused before Redis saw it: the TTLs were not set */
    return rc;
}

/* ---- presence ----------------------------------------------------------- */

/* The keys and leading arguments every presence script takes:
 * KEYS pz pu pc pv; ARGV chan room now ttl. */
static void presence_call(struct args *a, char k[4][KEY_MAX], char *chan, struct cf_str room,
                          int64_t now, const struct store_limits *lim)
{
    presence_keys(a, k, room);
    arg(a, chan, channel(chan, room));
    arg_str(a, room);
    arg_num(a, now);
    arg_num(a, lim->presence_ttl_ms);
}

/* The same for a script called on its own: numkeys first. */
static void presence_head(struct args *a, char k[4][KEY_MAX], char *chan, struct cf_str room,
                          const struct store_limits *lim)
{
    arg_num(a, 4);
    presence_call(a, k, chan, room, cf_wall_ms(), lim);
}

int store_leave(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                struct cf_str conn)
{
    char pk[4][KEY_MAX], chan[KEY_MAX];
    struct args a = {0};
    presence_head(&a, pk, chan, room, lim);
    arg_str(&a, conn);
    return eval(rb, S_LEAVE, &a, NULL, NULL);
}

int store_refresh(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                  const struct cf_str *conns, const struct cf_str *users, uint32_t n)
{
    enum { PER_CALL = 24 }; /* pairs per call: 52 arguments (rbatch.c takes 64) */
    int64_t now = cf_wall_ms();
    for (uint32_t at = 0; at < n || at == 0; at += PER_CALL) {
        char pk[4][KEY_MAX], chan[KEY_MAX];
        struct args a = {0};
        presence_call(&a, pk, chan, room, now, lim);
        for (uint32_t i = at; i < n && i < at + PER_CALL; i++) {
            arg_str(&a, conns[i]);
            arg_str(&a, users[i]);
        }
        int rc = batch(rb, S_REFRESH, 4, &a, NULL, NULL);
        if (rc < 0)
            return rc;
        if (n == 0)
            break;
    }
    return 0;
}

/* ---- history ------------------------------------------------------------ */

static void page_reply(void *ud, const redisReply *r)
{
    struct box *b = ud;
    store_page_fn fn = (store_page_fn)b->fn;
    struct store_page p = {0};
    int64_t more;
    struct cf_str *msgs = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && int_of(r->element[1], &more) &&
        (msgs = strings_of(r->element[0], &p.nmessages))) {
        p.messages = msgs;
        p.has_more = more != 0;
        fn(b->ud, 0, &p);
    } else {
        fn(b->ud, r && r->type != REDIS_REPLY_ERROR ? -EPROTO : err_of(r), NULL);
    }
    free(msgs);
    box_free(b);
}

int store_history(struct rbridge *rb, const struct store_limits *lim, struct cf_str room,
                  bool has_before, uint64_t before, uint32_t limit, store_page_fn fn, void *ud)
{
    char k_meta[KEY_MAX], k_hist[KEY_MAX];
    struct args a = {0};
    arg_num(&a, 2);
    arg(&a, k_meta, room_key(k_meta, room, "meta"));
    arg(&a, k_hist, room_key(k_hist, room, "hist"));
    arg_num(&a, has_before && before <= INT64_MAX ? (int64_t)before : -1);
    arg_num(&a, limit);
    arg_num(&a, lim->history_size);
    return eval(rb, S_HISTORY, &a, page_reply, box_new((void (*)(void))fn, ud));
}

int store_typing(struct rbridge *rb, struct cf_str room, struct cf_str user, uint32_t gap_ms,
                 const void *payload, size_t len)
{
    char key[KEY_MAX + CF_USERNAME_BYTES_MAX + 8], chan[KEY_MAX];
    struct args a = {0};
    arg_num(&a, 1);
    int n = snprintf(key, sizeof key, "cf:{%.*s}:ty:%.*s", (int)room.len, room.p, (int)user.len,
                     user.p);
    arg(&a, key, (size_t)n);
    arg(&a, chan, channel(chan, room));
    arg(&a, payload, len);
    arg_num(&a, gap_ms);
    return eval(rb, S_TYPING, &a, NULL, NULL);
}
