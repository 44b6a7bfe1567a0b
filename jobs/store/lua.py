"""Every Lua script the engine runs in Redis, in one place.

Each script is one atomic step of the engine's protocol. Keys are passed as KEYS except the
job key of a job whose id the create script itself allocates (single-instance Redis only).
Payloads arrive as one JSON argument; every value in them is a string, so no float or big
integer goes through Lua numbers. Delivery guarantee these scripts provide: work items and
events are appended at least once, and a job write happens only if the fence it was
computed under still holds, so side effects decided on stale reads are never committed.
"""

from __future__ import annotations

# Fenced compare-and-set commit of one job transition.
# KEYS: 1 job, 2 events, 3 audit, 4 timers, 5 queue, 6 cluster lock, 7 active set,
#   8 card hash, 9 fence counter
# ARGV[1] JSON: job_id, commit_id, expect{field: value}, set{field: value},
#   events[[kind, at, data]], audit[[field, value, ...]], zrem[member], zadd[[score, member]],
#   enqueue[[field, value, ...]], unlock (bool), expire_ms ('' = keep), events_keep,
#   audit_keep
# Returns {1, ""} on success, {1, "replayed"} when this very commit (same commit_id) was
# already applied, {0, <first field that did not match>} when refused.
# Why the replay check: a client whose reply was lost (socket timeout, Redis frozen or killed
# after the write) re-sends the same script; without it the copy would be refused by the
# first one's own change and the worker would drop a job it had just moved on (stranded).
# The job keeps its last COMMIT_IDS_KEPT commit ids in `commits`.
# A settled job (`unlock`: ended, logins not left off) gets `expire_ms` as the time to live
# of its hash, card hash and fence counter (PPS_RETENTION_DAYS); no other job ever expires.
COMMIT = r"""
local p = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'missing'} end
local cid = p.commit_id or ''
local recent = redis.call('HGET', KEYS[1], 'commits') or ''
if cid ~= '' and string.find(' ' .. recent .. ' ', ' ' .. cid .. ' ', 1, true) then
  return {1, 'replayed'}
end
for f, v in pairs(p.expect) do
  local cur = redis.call('HGET', KEYS[1], f)
  if not cur then cur = '' end
  if cur ~= v then return {0, f} end
end
local flat = {}
for f, v in pairs(p.set) do flat[#flat + 1] = f; flat[#flat + 1] = v end
if cid ~= '' then
  local ids = {}
  for id in string.gmatch(recent, '%S+') do ids[#ids + 1] = id end
  ids[#ids + 1] = cid
  local first = math.max(1, #ids - tonumber(p.commit_ids_kept or '8') + 1)
  flat[#flat + 1] = 'commits'; flat[#flat + 1] = table.concat(ids, ' ', first, #ids)
end
if #flat > 0 then redis.call('HSET', KEYS[1], unpack(flat)) end
for _, e in ipairs(p.events) do
  local seq = redis.call('HINCRBY', KEYS[1], 'event_seq', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', p.events_keep, '*', 'job_id', p.job_id,
    'kind', e[1], 'seq', tostring(seq), 'at', e[2], 'data', e[3])
end
for _, a in ipairs(p.audit) do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', p.audit_keep, '*', unpack(a))
end
for _, m in ipairs(p.zrem) do redis.call('ZREM', KEYS[4], m) end
for _, z in ipairs(p.zadd) do redis.call('ZADD', KEYS[4], z[1], z[2]) end
for _, q in ipairs(p.enqueue) do redis.call('XADD', KEYS[5], '*', unpack(q)) end
if p.unlock then
  if redis.call('HGET', KEYS[6], 'job_id') == p.job_id then redis.call('DEL', KEYS[6]) end
  redis.call('SREM', KEYS[7], p.job_id)
  if (p.expire_ms or '') ~= '' then
    for i = 8, 9 do redis.call('PEXPIRE', KEYS[i], p.expire_ms) end
    redis.call('PEXPIRE', KEYS[1], p.expire_ms)
  end
end
return {1, ''}
"""

# Create a job: idempotency key, cluster lock, first event/audit/work item. The id comes from
# the caller (fields.id, unique even across a data loss); an id already in use is refused.
# KEYS: 1 seq (no longer used), 2 idem key ('' when none), 3 cluster lock, 4 active,
#   5 history, 6 events, 7 audit, 8 queue, 9 timers, 10 the cluster's history
# ARGV[1]: job key prefix (`<prefix>job:`); ARGV[2] JSON: idem, idem_ttl, fields{...},
#   created_ms, event[kind, at, data], audit[[field, value, ...]] (job_id added here),
#   start_ms ('' = enqueue now), token, events_keep, audit_keep
# Returns {'created', id} | {'exists', id} | {'busy', holder id, holder requester}
#   | {'taken', id}.
CREATE = r"""
local p = cjson.decode(ARGV[2])
if p.idem ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'exists', existing} end
end
local holder = redis.call('HGET', KEYS[3], 'job_id')
if holder then
  local hk = ARGV[1] .. holder
  local st = redis.call('HGET', hk, 'state')
  local off = redis.call('HGET', hk, 'logins_disabled')
  local ended = st == 'succeeded' or st == 'failed' or st == 'cancelled'
  -- A lock whose job is gone or settled is stale (the release is atomic, so only a
  -- deleted job or a hand edit leaves one behind).
  if st and not (ended and off ~= '1') then
    return {'busy', holder, redis.call('HGET', KEYS[3], 'requester') or ''}
  end
end
local id = p.fields['id']
local jk = ARGV[1] .. id
if redis.call('EXISTS', jk) == 1 then return {'taken', id} end
p.fields['event_seq'] = '1'
local flat = {}
for f, v in pairs(p.fields) do flat[#flat + 1] = f; flat[#flat + 1] = v end
if p.start_ms ~= '' then
  local member = id .. '|start|' .. p.token
  flat[#flat + 1] = 'wake_timer'; flat[#flat + 1] = member
  redis.call('ZADD', KEYS[9], p.start_ms, member)
else
  redis.call('XADD', KEYS[8], '*', 'job_id', id, 'kind', 'step', 'token', p.token)
end
redis.call('HSET', jk, unpack(flat))
redis.call('HSET', KEYS[3], 'job_id', id, 'requester', p.fields['requester'])
redis.call('SADD', KEYS[4], id)
redis.call('ZADD', KEYS[5], p.created_ms, id)
redis.call('ZADD', KEYS[10], p.created_ms, id)
if p.idem ~= '' then redis.call('SET', KEYS[2], id, 'PX', p.idem_ttl) end
local e = p.event
redis.call('XADD', KEYS[6], 'MAXLEN', '~', p.events_keep, '*', 'job_id', id, 'kind', e[1],
  'seq', '1', 'at', e[2], 'data', e[3])
for _, a in ipairs(p.audit) do
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', p.audit_keep, '*', 'job_id', id, unpack(a))
end
return {'created', id}
"""

# Write fields of an existing job only (the notifier's card/gate message ts).
# KEYS: 1 job; ARGV: field, value, field, value, ... Returns 1, or 0 when the job is missing.
SET_IF_EXISTS = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# Write fields of a hash belonging to one job instance (the job itself or its card hash: the
# notifier's bookkeeping), only while that instance exists. Job ids used to start again after
# Redis lost its data (they no longer repeat); a late write must still never reach another job.
# A card hash first written after its job settled takes the job's time to live (it must not
# outlive it).
# KEYS: 1 job, 2 the hash to write; ARGV: 1 the job's created_at, then field, value, ...
# Returns 1, or 0 when the job is missing or is another instance.
SET_IF_SAME_JOB = r"""
if redis.call('HGET', KEYS[1], 'created_at') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
if KEYS[2] ~= KEYS[1] then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return 1
"""

# Take a job's lease and a new fencing token, stored on the job.
# KEYS: 1 lease, 2 fence counter, 3 job; ARGV: 1 owner token, 2 lease ms.
# Returns the fence (> 0), or 0 when someone else holds the lease. A re-send of the same call
# (its reply was lost) finds its own token and gets the fence it was given, not a refusal.
# The counter lives as long as its job: a settled job's time to live is copied to it, and the
# counter of a job that does not exist (expired) lasts only as long as this lease.
LEASE_ACQUIRE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return tonumber(redis.call('GET', KEYS[2])) end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local f = redis.call('INCR', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 'fence', f)
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
else
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return f
"""

# Extend the lease while still its owner; take it back if it expired (Redis was away longer
# than a lease) and nobody took the job since: the fence counter still shows our fence
# (an acquire, and our own release, move it on).
# KEYS: 1 lease, 2 fence counter; ARGV: 1 token, 2 ms, 3 our fence. Returns 1 (held) / 0 (lost).
LEASE_RENEW = r"""
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if owner or ARGV[3] == '' or redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# Release the lease only while still its owner, and move the fence counter on (if nobody
# did) so a heartbeat still on its way cannot take the lease back (see LEASE_RENEW).
# KEYS: 1 lease, 2 fence counter; ARGV: 1 token, 2 our fence. Returns 1 if it was ours.
LEASE_RELEASE = r"""
local ours = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]); ours = 1 end
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('INCR', KEYS[2]) end
return ours
"""

# Move due timers into the work stream, atomically (any number of workers may tick).
# KEYS: 1 timers, 2 queue; ARGV: 1 now ms, 2 max entries. Members are `job_id|kind|token`.
# Returns the number of timers released.
RELEASE_TIMERS = r"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local a = string.find(m, '|', 1, true)
  local b = a and string.find(m, '|', a + 1, true)
  if b then
    redis.call('XADD', KEYS[2], '*', 'job_id', string.sub(m, 1, a - 1),
      'kind', string.sub(m, a + 1, b - 1), 'token', string.sub(m, b + 1))
  end
end
return #due
"""

# Drop history index entries whose job record expired (PPS_RETENTION_DAYS). Only entries
# older than the cutoff are looked at, a bounded number per call; a job that still exists
# (active, or logins left off) keeps its entry whatever its age.
# KEYS: the history zsets to trim; ARGV: 1 job key prefix, 2 cutoff ms, 3 entries examined
# per zset. Returns how many entries were removed.
TRIM_HISTORY = r"""
local removed = 0
for _, key in ipairs(KEYS) do
  local old = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
  for _, id in ipairs(old) do
    if redis.call('EXISTS', ARGV[1] .. id) == 0 then
      redis.call('ZREM', key, id)
      removed = removed + 1
    end
  end
end
return removed
"""

# Sliding-window rate limit: take one slot of a user's window, or say when one frees up.
# KEYS: 1 the user's zset (member = request id, score = ms); ARGV: 1 now ms, 2 window ms,
# 3 limit, 4 request id. A request id already counted (a re-delivery) is allowed again
# without taking a second slot. Returns {1, 0} when allowed, {0, <ms when a slot frees>}.
RATE_TAKE = r"""
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return {1, 0} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2]) + window}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
"""

# Release a lock only while it is still ours (a lock that expired and was taken by another
# owner is left alone). KEYS: 1 lock; ARGV: 1 owner token. Returns 1 when released.
UNLOCK_IF_OWNER = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
