/*
 * lua.c — the three Lua scripts the Redis bus runs (EVALSHA, EVAL on
 * NOSCRIPT; see pool.c). Each runs atomically in Redis, so the stream order is
 * the live order. Data only: no state, no locks, any thread. The keys they
 * touch are described at the top of redis.c.
 */
#include "redis.h"

/* KEYS: stream, epoch, idem. ARGV: live channel, maxlen, max age ms, topic,
 * ext, json, use idem ("1"), idem window ms, epoch if new, key ttl ms.
 * Returns {duplicate 0|1, epoch, stream id}. */
static const char script_publish[] =
    "local ep = redis.call('GET', KEYS[2])\n"
    "if not ep then ep = ARGV[9]; redis.call('SET', KEYS[2], ep, 'PX', ARGV[10]) end\n"
    "if ARGV[7] == '1' then\n"
    "  if not redis.call('SET', KEYS[3], '-', 'NX', 'PX', ARGV[8]) then\n"
    "    local prev = redis.call('GET', KEYS[3])\n"
    "    local sp = prev and string.find(prev, ' ', 1, true)\n"
    "    if sp then return {1, string.sub(prev, 1, sp - 1), string.sub(prev, sp + 1)} end\n"
    "  end\n"
    "end\n"
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', ARGV[4], 'x', "
    "ARGV[5], 'e', ARGV[6])\n"
    "local t = redis.call('TIME')\n"
    "local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[3])\n"
    "if minid > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', minid)) "
    "end\n"
    "if ARGV[7] == '1' then redis.call('SET', KEYS[3], ep .. ' ' .. id, 'PX', ARGV[8]) end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[10])\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[10])\n"
    "redis.call('PUBLISH', ARGV[1], ep .. '\\n' .. id .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[5] .. "
    "'\\n' .. ARGV[6])\n"
    "return {0, ep, id}\n";

/* KEYS: stream, epoch. ARGV[1]: "1" to read the whole epoch when no candidate
 * matches; ARGV[2..]: "<epoch> <start id>" candidates ("0-0": from the start).
 * Returns {epoch or "", coverage, last id or "", entries} with coverage
 * -1 no candidate of this epoch, 0 history lost after it, 1 covered (entries
 * after it), 2 no candidate matched and entries are the whole epoch. */
static const char script_read[] =
    "local ep = redis.call('GET', KEYS[2])\n"
    "if not ep then return {'', -1, '', {}} end\n"
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "local lastid = ''\n"
    "if #last > 0 then lastid = last[1][1] end\n"
    "local start = nil\n"
    "for i = 2, #ARGV do\n"
    "  local sp = string.find(ARGV[i], ' ', 1, true)\n"
    "  if sp and string.sub(ARGV[i], 1, sp - 1) == ep then start = string.sub(ARGV[i], sp + 1); "
    "break end\n"
    "end\n"
    "local whole = 1\n"
    "if not start then\n"
    "  if ARGV[1] ~= '1' then return {ep, -1, lastid, {}} end\n"
    "  start = '0-0'; whole = 2\n"
    "end\n"
    "if start == '0-0' then\n"
    "  local covered = whole\n"
    "  if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "    local info = redis.call('XINFO', 'STREAM', KEYS[1])\n"
    "    local len, added = -1, -2\n"
    "    for j = 1, #info, 2 do\n"
    "      if info[j] == 'length' then len = info[j + 1] elseif info[j] == 'entries-added' then "
    "added = info[j + 1] end\n"
    "    end\n"
    "    if len ~= added and whole == 1 then covered = 0 end\n"
    "  end\n"
    "  return {ep, covered, lastid, redis.call('XRANGE', KEYS[1], '-', '+')}\n"
    "end\n"
    "local r = redis.call('XRANGE', KEYS[1], start, '+')\n"
    "if #r == 0 or r[1][1] ~= start then return {ep, 0, lastid, {}} end\n"
    "table.remove(r, 1)\n"
    "return {ep, 1, lastid, r}\n";

/* KEYS: stream, epoch. ARGV: epoch if new, key ttl ms. Returns {epoch, last id or ""}. */
static const char script_position[] =
    "local ep = redis.call('GET', KEYS[2])\n"
    "if not ep then ep = ARGV[1]; redis.call('SET', KEYS[2], ep, 'PX', ARGV[2]) end\n"
    "local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "if #last > 0 then return {ep, last[1][1]} end\n"
    "return {ep, ''}\n";

const char *const rt__redis_scripts[RT__SCRIPT_COUNT] = {
    [RT__SCRIPT_PUBLISH] = script_publish,
    [RT__SCRIPT_READ] = script_read,
    [RT__SCRIPT_POSITION] = script_position,
};
