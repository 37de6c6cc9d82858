import { createHash } from 'node:crypto';

/**
 * The one Lua script behind every operation that needs atomicity. `KEYS[1]` is the store's
 * `{ns}:meta` key (so Redis Cluster routes the call to the store's slot) and every other key
 * name is derived from it; `ARGV[1]` is the operation, `ARGV[2]` the history bound (revisions
 * the stream keeps, 0 = unbounded), the rest the operation's arguments.
 *
 * Invariants every operation keeps:
 * - every revision is exactly one stream entry `<rev>-0` whose field `e` holds that revision's
 *   events, so a reader that sees an entry id other than the one it expects knows history
 *   was trimmed (resync) instead of silently missing events; fields `t` and `p` are the
 *   entry's token and the previous entry's, a chain that shows when history was rewritten;
 * - the stream holds every entry from the compacted revision (`meta.compact`) on;
 * - nothing is written before every check has passed (Redis does not roll a script back).
 *
 * An event is a header line `t klen vlen create version lease hasPrev pvlen pcreate pmod
 * pversion please\n` followed by the key, the value and the previous value, as raw bytes.
 */
export const SCRIPT = String.raw`
local META = KEYS[1]
local P = string.sub(META, 1, -5)
local IDX, LOG, LEASES, LTTL = P .. 'idx', P .. 'log', P .. 'leases', P .. 'lttl'
local HISTORY = tonumber(ARGV[2])

local function fmt(n) return string.format('%d', n) end
local function kkey(k) return P .. 'k:' .. k end
local function lkey(id) return P .. 'lk:' .. id end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- {value, create, mod, version, lease} or nil
local function read(k)
  local r = redis.call('HMGET', kkey(k), 'v', 'c', 'm', 'n', 'l')
  if not r[2] then return nil end
  return r
end

-- A store starts at revision 1 (as etcd does), which has no events: the first write is 2.
local function current_rev() return tonumber(redis.call('HGET', META, 'rev') or '1') end
local function compact_rev() return tonumber(redis.call('HGET', META, 'compact') or '0') end

-- Decimal integer strings compared exactly (bigints beyond 2^53 included).
local function cmpnum(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na and -1 or 1 end
  if na then a, b = string.sub(b, 2), string.sub(a, 2) end
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local events = {}

local function header(t, k, vlen, c, n, l, prev)
  if prev then
    return t .. ' ' .. #k .. ' ' .. vlen .. ' ' .. c .. ' ' .. n .. ' ' .. l .. ' 1 ' .. #prev[1] ..
      ' ' .. prev[2] .. ' ' .. prev[3] .. ' ' .. prev[4] .. ' ' .. prev[5] .. '\n'
  end
  return t .. ' ' .. #k .. ' ' .. vlen .. ' ' .. c .. ' ' .. n .. ' ' .. l .. ' 0 0 0 0 0 0\n'
end

local function put(rev, k, v, lease)
  local prev = read(k)
  local c, n = fmt(rev), '1'
  if prev then
    c = prev[2]
    n = fmt(tonumber(prev[4]) + 1)
    if prev[5] ~= '0' and prev[5] ~= lease then redis.call('SREM', lkey(prev[5]), k) end
  else
    redis.call('ZADD', IDX, 0, k)
  end
  if lease ~= '0' then redis.call('SADD', lkey(lease), k) end
  redis.call('HSET', kkey(k), 'v', v, 'c', c, 'm', fmt(rev), 'n', n, 'l', lease)
  events[#events + 1] = header('p', k, #v, c, n, lease, prev)
  events[#events + 1] = k
  events[#events + 1] = v
  if prev then events[#events + 1] = prev[1] end
  return {'p', c, n}
end

local function del(rev, k)
  local prev = read(k)
  if not prev then return nil end
  if prev[5] ~= '0' then redis.call('SREM', lkey(prev[5]), k) end
  redis.call('DEL', kkey(k))
  redis.call('ZREM', IDX, k)
  events[#events + 1] = header('d', k, 0, '0', '0', '0', prev)
  events[#events + 1] = k
  events[#events + 1] = prev[1]
  return prev
end

local function next_rev()
  redis.call('HSETNX', META, 'rev', '1')
  return redis.call('HINCRBY', META, 'rev', 1)
end

-- One stream entry for the revision; then trim to the history bound (in batches). Each entry
-- also carries a token of its own (server time) and the previous entry's: a reader that
-- follows the chain notices history that was rewritten under it (a failover that lost writes).
local function commit(rev)
  local t = redis.call('TIME')
  local token = t[1] .. '.' .. t[2]
  local prev = redis.call('HGET', META, 'tok') or ''
  redis.call('XADD', LOG, fmt(rev) .. '-0', 'e', table.concat(events), 't', token, 'p', prev)
  redis.call('HSET', META, 'tok', token)
  events = {}
  if HISTORY > 0 then
    local K = compact_rev()
    if rev - K >= HISTORY + math.max(1, math.floor(HISTORY / 16)) then
      local nk = fmt(rev - HISTORY + 1)
      redis.call('HSET', META, 'compact', nk)
      redis.call('XTRIM', LOG, 'MINID', nk)
    end
  end
end

-- Deletes a lease and its keys, the keys at one revision (none when it has no keys).
local function drop_lease(id)
  local members = redis.call('SMEMBERS', lkey(id))
  redis.call('DEL', lkey(id))
  redis.call('ZREM', LEASES, id)
  redis.call('HDEL', LTTL, id)
  local keys = {}
  for _, k in ipairs(members) do
    if redis.call('EXISTS', kkey(k)) == 1 then keys[#keys + 1] = k end
  end
  if #keys == 0 then return end
  table.sort(keys)
  local rev = next_rev()
  for _, k in ipairs(keys) do del(rev, k) end
  commit(rev)
end

-- Whether the lease exists and has not expired; an expired one is dropped on the spot.
local function live(id, now)
  local exp = redis.call('ZSCORE', LEASES, id)
  if not exp then return false end
  if tonumber(exp) <= now then
    drop_lease(id)
    return false
  end
  return true
end

local function sweep(now, max)
  local due = redis.call('ZRANGEBYSCORE', LEASES, '-inf', fmt(now), 'LIMIT', 0, max)
  for _, id in ipairs(due) do drop_lease(id) end
  return #due
end

local function holds(k, target, op, val)
  local kv = read(k)
  if target == 'e' then return (kv ~= nil) == (val == '1') end
  if target == 'v' then
    if not kv then return false end
    if op == '=' then return kv[1] == val end
    return kv[1] ~= val
  end
  local actual = '0'
  if kv then
    if target == 'm' then actual = kv[3] elseif target == 'c' then actual = kv[2] else actual = kv[4] end
  end
  local c = cmpnum(actual, val)
  if op == '=' then return c == 0 elseif op == '!=' then return c ~= 0 elseif op == '<' then return c < 0 end
  return c > 0
end

local op = ARGV[1]

if op == 'page' then
  -- ARGV: min, max (ZRANGEBYLEX bounds), limit, byte budget.
  -- Returns {rev, compact, more, lastKey, key, value, create, mod, version, lease, ...}
  local meta = redis.call('HMGET', META, 'rev', 'compact')
  local limit = tonumber(ARGV[5])
  local budget = tonumber(ARGV[6])
  -- One key more than the page holds tells whether another page follows (no empty last page).
  local keys = redis.call('ZRANGEBYLEX', IDX, ARGV[3], ARGV[4], 'LIMIT', 0, limit + 1)
  local n = math.min(#keys, limit)
  local out = {meta[1] or '1', meta[2] or '0', 0, false}
  local bytes = 0
  for i = 1, n do
    local k = keys[i]
    local r = redis.call('HMGET', kkey(k), 'v', 'c', 'm', 'n', 'l')
    if r[2] then
      out[#out + 1] = k
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
      out[#out + 1] = r[3]
      out[#out + 1] = r[4]
      out[#out + 1] = r[5]
      bytes = bytes + #k + #r[1]
    end
    out[4] = k
    if bytes >= budget and i < n then
      out[3] = 1
      return out
    end
  end
  if #keys > limit then out[3] = 1 end
  return out
end

if op == 'compact' then
  local rev = ARGV[3]
  local C = fmt(current_rev())
  if cmpnum(rev, C) > 0 then return {'future', C} end
  if cmpnum(rev, fmt(compact_rev())) > 0 then
    redis.call('HSET', META, 'compact', rev)
    redis.call('XTRIM', LOG, 'MINID', rev)
  end
  return {'ok'}
end

local now = now_ms()

if op == 'sweep' then
  -- Returns {leases expired now, ms until the next expiry or -1}.
  local n = sweep(now, tonumber(ARGV[3]))
  local first = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
  if #first == 0 then return {n, -1} end
  return {n, math.max(0, tonumber(first[2]) - now)}
end

sweep(now, 16)

if op == 'txn' then
  -- ARGV: #compares, #success, #failure, then compares (key, target, op, value) and ops
  -- (type, key, value, lease), four arguments each.
  local nc, ns, nf = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local i = 6
  local ok = true
  for _ = 1, nc do
    if ok and not holds(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]) then ok = false end
    i = i + 4
  end
  local first, count = i, ns
  if not ok then first, count = i + 4 * ns, nf end
  for j = 0, count - 1 do
    local b = first + 4 * j
    if ARGV[b] == 'p' and ARGV[b + 3] ~= '0' and not live(ARGV[b + 3], now) then
      return {'lease', ARGV[b + 3]}
    end
  end
  local writes = false
  for j = 0, count - 1 do
    local b = first + 4 * j
    if ARGV[b] == 'p' or (ARGV[b] == 'd' and redis.call('EXISTS', kkey(ARGV[b + 1])) == 1) then
      writes = true
      break
    end
  end
  local rev = current_rev()
  if writes then rev = next_rev() end
  local results = {}
  for j = 0, count - 1 do
    local b = first + 4 * j
    local t, k = ARGV[b], ARGV[b + 1]
    if t == 'g' then
      local kv = read(k)
      if kv then results[j + 1] = {'g', kv[1], kv[2], kv[3], kv[4], kv[5]} else results[j + 1] = {'g'} end
    elseif t == 'p' then
      results[j + 1] = put(rev, k, ARGV[b + 2], ARGV[b + 3])
    else
      local prev = del(rev, k)
      if prev then results[j + 1] = {'d', prev[1], prev[2], prev[3], prev[4], prev[5]} else results[j + 1] = {'d'} end
    end
  end
  if writes then commit(rev) end
  return {'ok', ok and 1 or 0, fmt(rev), results}
end

if op == 'grant' then
  local ttl = tonumber(ARGV[3])
  local id = fmt(redis.call('HINCRBY', META, 'lease', 1))
  redis.call('ZADD', LEASES, fmt(now + ttl * 1000), id)
  redis.call('HSET', LTTL, id, ARGV[3])
  return id
end

if op == 'keepalive' then
  local id = ARGV[3]
  if not live(id, now) then return {'gone'} end
  local ttl = redis.call('HGET', LTTL, id)
  redis.call('ZADD', LEASES, 'XX', fmt(now + tonumber(ttl) * 1000), id)
  return {'ok', ttl}
end

if op == 'revoke' then
  local id = ARGV[3]
  if not live(id, now) then return {'gone'} end
  drop_lease(id)
  return {'ok'}
end

return redis.error_reply('ERR calyx: unknown operation ' .. tostring(op))
`;

/** SHA-1 of the script, for EVALSHA. */
export const SCRIPT_SHA = createHash('sha1').update(SCRIPT).digest('hex');
