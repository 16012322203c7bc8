/* scripts: see scripts.h. */
#include "scripts.h"

#include "wire.h"

/* CF_WIRE_MAX_EVENT, for the scripts' text */
#define MAX_EVENT_STR "132096"
_Static_assert(CF_WIRE_MAX_EVENT == 132096, "MAX_EVENT_STR is CF_WIRE_MAX_EVENT");

/* Redis runs Lua 5.1; numbers are doubles, exact up to 2^53, far beyond any
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
 * its members swept by that one at every refresh (leave and join again). So
 * no caller passes a time.
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
 * original "id:ts". The record is "id:ts:epoch": a repeat whose room has
 * another epoch now, or whose count has not reached its id (a record an
 * older broker wrote, without the epoch), belongs to a history lost since,
 * by eviction or a partial flush, and acked, it named a message the room no
 * longer has (a repeat costs one more HMGET): tables built for each reply, and
 * the payload built in several pieces, cost Redis more than any one of the commands (batches of 46
 * in `redis-benchmark`: 5.0 -> 4.1 µs a send).
 *
 * A send that fails keeps the sends before it, which are stored and
 * published and get their ids (repeats their original ones). What happens
 * to the sends after it depends on what failed:
 * - a key of its room holds what a send cannot use (another type, a seq
 *   that is no integer, an epoch that is not 16 characters as the brokers
 *   make it: damage from outside, as brokers drop messages with any other
 *   epoch, cf_wire_room_event): only that room's later sends
 *   are not run (running them would give them ids before the failed one's
 *   resend), and the error names the damaged key so the log says what to
 *   delete; the other rooms' sends run as if it had not happened;
 * - anything else (out of memory, a replica, a busy server) would fail them
 *   all alike: they are not run, each answered with that error after "ERR
 *   not run: ... failed: " (so the broker tells the sender what it would
 *   have got), and when the failed one came first the whole batch gets its
 *   error as the reply, as a lone send would.
 * The bridge reconnects on the errors that call for it (READONLY after a
 * failover) either way (rbridge_call_failed). */
static const char script_send[] = PRELUDE
    "local function send(km, kh, kd, a)\n"
    "  local d = kd and redis.call('GET', kd)\n"
    "  if d then\n"
    "    -- a repeat (a time before 1970 too), unless the room's history was\n"
    "    -- lost since: then it is sent anew. The record names the epoch; one\n"
    "    -- an older broker wrote does not, and is checked against the count\n"
    "    local did, dts, dep = string.match(d, '^(%d+):(%-?%d+):(%x+)$')\n"
    "    if not did then did, dts = string.match(d, '^(%d+):(%-?%d+)$') end\n"
    "    if did then\n"
    "      local m = redis.call('HMGET', km, 'epoch', 'seq')\n"
    "      local seq = tonumber(m[2] or '')\n"
    "      if seq and tonumber(did) <= seq and (not dep or m[1] == dep) then\n"
    "        return did .. ':' .. dts\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local touch = ARGV[a + 7] == '1'\n"
    "  local epoch = redis.call('HGET', km, 'epoch')\n"
    "  if not epoch then\n"
    "    epoch = ARGV[a + 6]\n"
    "    redis.call('HSET', km, 'epoch', epoch, 'seq', 0)\n"
    "    redis.call('DEL', kh)\n"
    "    touch = true\n"
    "  end\n"
    "  if #epoch ~= 16 then error({err = '" SCRIPT_BAD_EPOCH "'}) end\n"
    "  local id = redis.call('HINCRBY', km, 'seq', '1')\n"
    "  local hi = math.floor(id / 4294967296)\n"
    "  local payload = ARGV[a + 1] .. '\\165epoch\\176' .. epoch .. '\\162id' ..\n"
    "    struct.pack('>BI4I4', 207, hi, id - hi * 4294967296)\n"
    "  local hsize = tonumber(ARGV[a + 3])\n"
    "  if hsize > 0 then\n"
    "    -- a history key of another type: give the id back (writes are not\n"
    "    -- undone), or each send until it is deleted would leave a gap\n"
    "    local len = redis.pcall('RPUSH', kh, payload)\n"
    "    if type(len) == 'table' then\n"
    "      redis.call('HINCRBY', km, 'seq', '-1')\n"
    "      error(len)\n"
    "    end\n"
    "    if len > hsize + tonumber(ARGV[a + 8]) then redis.call('LTRIM', kh, -hsize, -1) end\n"
    "    if touch or len == 1 then redis.call('EXPIRE', kh, ARGV[a + 4]) end\n"
    "  else\n"
    "    redis.call('DEL', kh) -- the list must hold exactly the newest ids\n"
    "  end\n"
    "  if touch then redis.call('EXPIRE', km, ARGV[a + 4]) end\n"
    "  redis.call('PUBLISH', ARGV[a], payload)\n"
    "  if kd then\n"
    "    redis.call('SET', kd, string.format('%d:%s:%s', id, ARGV[a + 2], epoch), 'EX', ARGV[a + 5])\n"
    "  end\n"
    "  return id\n"
    "end\n"
    "local function damaged(e)\n"
    "  return string.find(e, '^WRONGTYPE') or string.find(e, '^ERR hash value is not an integer')\n"
    "    or string.find(e, '^ERR increment or decrement would overflow')\n"
    "    or string.find(e, '^" SCRIPT_BAD_EPOCH "')\n"
    "end\n"
    "local function wrong(key, want)\n"
    "  local t = redis.call('TYPE', key)['ok']\n"
    "  return t ~= 'none' and t ~= want\n"
    "end\n"
    "local function bad_key(km, kh, kd)\n"
    "  if wrong(km, 'hash') then return km end\n"
    "  if wrong(kh, 'list') then return kh end\n"
    "  if kd and wrong(kd, 'string') then return kd end\n"
    "  return km -- the types are right: meta's seq or epoch is damaged\n"
    "end\n"
    "local out, k, a, failed, broken = {}, 1, 1, nil, {}\n"
    "while a <= #ARGV do\n"
    "  local nk, na, km = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), KEYS[k]\n"
    "  if failed then\n"
    "    out[#out + 1] = redis.error_reply('" SCRIPT_NOT_RUN_AFTER "' .. failed)\n"
    "  elseif broken[km] then\n"
    "    out[#out + 1] = redis.error_reply('" SCRIPT_NOT_RUN "an earlier send to ' .. km ..\n"
    "      ' in its batch failed')\n"
    "  else\n"
    "    local kh, kd = KEYS[k + 1], nk == 3 and KEYS[k + 2] or nil\n"
    "    local ok, r = pcall(send, km, kh, kd, a + 2)\n"
    "    if ok then\n"
    "      out[#out + 1] = r\n"
    "    else\n"
    "      local e = type(r) == 'table' and r.err or tostring(r)\n"
    "      if damaged(e) then\n"
    "        broken[km] = true\n"
    "        e = e .. ' " SCRIPT_DAMAGED_KEY "' .. bad_key(km, kh, kd) .. ')'\n"
    "      else\n"
    "        failed = e\n"
    "        if #out == 0 then return redis.error_reply(e) end\n"
    "      end\n"
    "      out[#out + 1] = redis.error_reply(e)\n"
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

/* newest(hi, lo): the messages of ids lo..hi, oldest first, but only the
 * newest that fit in `budget` bytes (each counted with 8 bytes of framing,
 * as requests.c's fit does), and whether some were cut. The newest is kept
 * even when it alone is over the budget: a page then still moves on, where
 * an empty one with more to come made a client's gap fetch report ids lost
 * that the history holds (a largest message, with its framing, is over a
 * budget of MAX_CLIENT_QUEUE_BYTES/4 at that setting's floor; the queue
 * takes it as it takes a live one, which MAX_CLIENT_QUEUE_BYTES >=
 * 4 x MAX_MESSAGE_BYTES makes room for). Read from the
 * newest back in LRANGEs of 64, 128, ...: Redis builds, and the broker
 * reads, only what fits. An entry longer than any room event is none a
 * broker stored (damage from outside): it comes as an empty string, which
 * the gateway skips as it skips any it cannot decode, so that kept as the
 * newest it does not make a reply of its size (which the broker's reader
 * refuses past RREPLY_MAX_BYTES, resetting the connection at each join).
 * Expects `base` (HIST_WINDOW) and `budget` as locals declared before it. */
#define HIST_NEWEST                                                                                \
    "local function newest(hi, lo)\n"                                                              \
    "  local rev, used, top, step, cut = {}, 0, hi, 64, false\n"                                   \
    "  while top >= lo and not cut do\n"                                                           \
    "    local bot = top - step + 1\n"                                                             \
    "    if bot < lo then bot = lo end\n"                                                          \
    "    local part = redis.call('LRANGE', KEYS[2], bot - base, top - base)\n"                     \
    "    for i = #part, 1, -1 do\n"                                                                \
    "      local e = part[i]\n"                                                                    \
    "      if #e > " MAX_EVENT_STR " then e = '' end\n"                                            \
    "      used = used + #e + 8\n"                                                                 \
    "      if used > budget and #rev > 0 then cut = true break end\n"                              \
    "      rev[#rev + 1] = e\n"                                                                    \
    "    end\n"                                                                                    \
    "    if #part < top - bot + 1 then break end\n"                                                \
    "    top, step = bot - 1, step * 2\n"                                                          \
    "  end\n"                                                                                      \
    "  local out = {}\n"                                                                           \
    "  for i = #rev, 1, -1 do out[#out + 1] = rev[i] end\n"                                        \
    "  return out, cut\n"                                                                          \
    "end\n"

/* KEYS meta hist pz pu pc pv; ARGV chan room conn user ttl keep
 * epoch since cepoch limit mcap hsize touch budget
 *
 * The messages are read by HIST_NEWEST (a usual join's 50 in one LRANGE),
 * within `budget` bytes: a recovery used to read everything after `since`
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
 * again: ~11 commands.
 *
 * A meta whose epoch or seq no broker wrote (damage from outside, as for
 * sends) refuses the join before anything is written, naming the key: the
 * client would otherwise get an epoch that no message of the room can
 * carry (brokers drop them), and every send refused. The history's length
 * is read before the member is added for the same reason: a history key of
 * another type fails the join there, not after it announced a member whom
 * the broker, told the join failed, never refreshes or removes. */
static const char script_join[] =
    PRELUDE PRESENCE
    "local C = {pz = KEYS[3], pu = KEYS[4], pc = KEYS[5], pv = KEYS[6], chan = ARGV[1],\n"
    "  room = ARGV[2], now = NOW_MS, ttl = tonumber(ARGV[5]),\n"
    "  nows = NOW_S}\n"
    "C.exp = string.format('%d', C.now + C.ttl)\n"
    "local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')\n"
    "local epoch, last, touch = meta[1], tonumber(meta[2] or '0'), ARGV[13] == '1'\n"
    "if epoch and (#epoch ~= 16 or not string.match(meta[2] or '0', '^%d+$')) then\n"
    "  local what = #epoch ~= 16 and '" SCRIPT_BAD_EPOCH "' or '" SCRIPT_BAD_SEQ "'\n"
    "  return redis.error_reply(what .. ' " SCRIPT_DAMAGED_KEY "' .. KEYS[1] .. '), changed from '\n"
    "    .. 'outside confab: delete it to let the room be joined (a new epoch starts)')\n"
    "end\n"
    "if not epoch then\n"
    "  epoch, last, touch = ARGV[7], 0, true\n"
    "  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)\n"
    "  redis.call('DEL', KEYS[2])\n"
    "end\n"
    "if touch then\n"
    "  redis.call('EXPIRE', KEYS[1], ARGV[6])\n"
    "  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[6]) end\n"
    "end\n"
    "local hsize = tonumber(ARGV[12])\n"
    HIST_WINDOW
    "sweep(C)\n"
    "add(C, ARGV[3], ARGV[4])\n"
    "if redis.call('TTL', C.pz) < keep_s(C) / 2 then keep(C) end\n"
    "local since = tonumber(ARGV[8])\n"
    "local limit = tonumber(ARGV[10])\n"
    "local budget = tonumber(ARGV[14])\n"
    HIST_NEWEST
    "local recovered, msgs, cut = 0, {}, false\n"
    "if since >= 0 and ARGV[9] == epoch and since <= last and since + 1 >= first then\n"
    "  recovered = 1\n"
    "  if since < last then\n"
    "    msgs, cut = newest(last, since + 1)\n"
    "    if cut then recovered = 0 end\n"
    "  end\n"
    "elseif limit > 0 and len > 0 then\n"
    "  if limit > len then limit = len end\n"
    "  msgs = newest(last, last - limit + 1)\n"
    "end\n"
"local count = C.count_now or redis.call('HLEN', C.pc)\n"
    "local mcap = tonumber(ARGV[11])\n"
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

/* KEYS pz pu pc pv; ARGV chan room ttl conn */
static const char script_leave[] =
    PRELUDE PRESENCE
    "local C = {pz = KEYS[1], pu = KEYS[2], pc = KEYS[3], pv = KEYS[4], chan = ARGV[1],\n"
    "  room = ARGV[2], now = NOW_MS, ttl = tonumber(ARGV[3]),\n"
    "  nows = NOW_S}\n"
    "drop(C, ARGV[4])\n"
    "sweep(C)\n"
    "return 0\n";

/* A batch of refreshes (rbatch.h): per call KEYS pz pu pc pv; ARGV chan
 * room ttl (conn user)..., after the call's two counts.
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
    "    ttl = tonumber(ARGV[a + 2]), nows = NOW_S}\n"
    "  C.exp = string.format('%d', C.now + C.ttl)\n"
    "  sweep(C)\n"
    "  local z, n = {}, 0\n"
    "  for i = a + 3, a + na - 2, 2 do\n"
    "    z[#z + 1] = C.exp\n"
    "    z[#z + 1] = ARGV[i]\n"
    "    n = n + 1\n"
    "  end\n"
    "  if n > 0 and redis.call('ZADD', C.pz, 'XX', 'CH', unpack(z)) < n then\n"
    "    for i = a + 3, a + na - 2, 2 do -- some were not there: expired, or the keys lost\n"
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

/* KEYS meta hist; ARGV before limit hsize budget
 *
 * Read by HIST_NEWEST, as a join's snapshot: a page of `limit` messages of
 * up to 128 KiB each was built by Redis and read by the broker whole, to
 * keep what fits: megabytes for a page of kilobytes. */
static const char script_history[] =
    "local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
    "local hsize = tonumber(ARGV[3])\n" HIST_WINDOW "local hi = last\n"
    "local before = tonumber(ARGV[1])\n"
    "if before >= 0 and before - 1 < hi then hi = before - 1 end\n"
    "local limit = tonumber(ARGV[2])\n"
    "if hi < first then return {{}, 0} end\n"
    "if limit == 0 then return {{}, 1} end\n"
    "local lo = hi - limit + 1\n"
    "if lo < first then lo = first end\n"
    "local budget = tonumber(ARGV[4])\n"
    HIST_NEWEST
    "local msgs, cut = newest(hi, lo)\n"
    "local more = 0\n"
    "if cut or lo > first then more = 1 end\n"
    "return {msgs, more}\n";

/* KEYS throttle; ARGV chan payload gap_ms: one typing event per user and
 * room per gap, across every node. */
static const char script_typing[] =
    "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then\n"
    "  redis.call('PUBLISH', ARGV[1], ARGV[2])\n"
    "end\n"
    "return 0\n";

const char *const store_scripts[S_COUNT] = {script_send,    script_join,    script_leave,
                                            script_refresh, script_history, script_typing};
const int store_nscripts = S_COUNT;
