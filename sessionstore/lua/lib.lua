-- lib.lua: what every script shares; scripts.py puts it in front of each script. `VIEW` is
-- the list of session hash fields (codec.VIEW) and `AT.x` the place of field x in it.
--
-- A bucket is the keys of one hash tag `P:{T:bb}:`: sessions `s:<random>`, user indexes
-- `u:<user id>`, and the indexes `t`, `i` (each in chunks: index.lua) and `x` (keys.py). A
-- script is given keys of one bucket and names the bucket's other keys from their shared
-- prefix, so every key it touches is in its slot by construction; no key name comes from a
-- script argument.
--
-- An entry is what `t` holds for a session: <created: 11 hex digits><random: 22><ip key>,
-- where the ip key is a length byte and the packed address. `i` holds <ip key><created><random>,
-- `x` holds entries scored by expiry. Every change of a session changes all of them at once.

local POSITION = 33  -- created (11) and random (22)

local function bucket_of(key)
  return string.match(key, '^(.-}:)')
end

local function entry_of(random, created, ip)
  return string.format('%011x', tonumber(created)) .. random .. string.char(#ip) .. ip
end

local function ip_entry(entry)
  return string.sub(entry, POSITION + 1) .. string.sub(entry, 1, POSITION)
end

-- The `t` entry of an `i` entry: the ip key's first byte is its length.
local function ip_entry_back(member)
  local split = string.byte(member, 1) + 1
  return string.sub(member, split + 1) .. string.sub(member, 1, split)
end

local function random_of(entry)
  return string.sub(entry, 12, POSITION)
end

-- A session hash's random part, from its key (`P:{T:bb}:s:<random>`).
local function random_in(session_key)
  return string.match(session_key, ':s:(.*)$')
end

-- Events: a script that may record them reads its events argument with `events_from`: ''
-- when the store records none, else '<retention ms>:<grace ms>:<actor>'. GRACE keeps an ended
-- session's hash that long past its end, so the sweep that finds it can still say whose it was.
local RETENTION, GRACE, ACTOR = 0, 0, 'system'

local function events_from(argument)
  local retention, grace, actor = string.match(argument or '', '^(%d+):(%d+):(.+)$')
  if retention then RETENTION, GRACE, ACTOR = tonumber(retention), tonumber(grace), actor end
end

-- Append an event to the bucket's stream `e`, in the same step as the change it records.
-- kind is an EVENT.<name> and reason a REASON.<name> (_core/kinds.py; literals once loaded).
-- The stream id's time is the store's clock (never below the stream's last, so a bucket's events, and so a user's,
-- stay in order whatever the callers' clocks); entries older than RETENTION are trimmed as new
-- ones come, and an idle stream expires whole.
local function emit(bucket, kind, entry, whose, actor, reason, now)
  if RETENTION == 0 then return end
  local stream = bucket .. 'e'
  local fields = {'t', kind, 's', random_of(entry), 'u', whose or '', 'ip',
    string.sub(entry, POSITION + 2), 'a', actor, 'r', reason, 'at', now}
  local stamp = tonumber(now)
  local added = redis.pcall('XADD', stream, 'MINID', stamp - RETENTION, stamp .. '-*', unpack(fields))
  if type(added) == 'table' and added.err then
    -- A caller whose clock is behind the stream's last event: take that time instead.
    local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1][1]
    stamp = tonumber(string.match(last, '^(%d+)'))
    redis.call('XADD', stream, 'MINID', stamp - RETENTION, stamp .. '-*', unpack(fields))
  end
  redis.call('PEXPIRE', stream, RETENTION)
end

-- Tell every process that keeps sessions in memory (nearcache.py) that this one changed: one
-- message per change, carrying the session's key, on its bucket's channel `P:{T:bb}:changes`.
-- Sharded (SPUBLISH): the message stays in the shard of the bucket's slot instead of crossing
-- the cluster bus to every node; the channel carries the bucket's hash tag, so it is in the
-- slot of the script's keys (a cluster refuses a script that publishes in another slot).
local function announce(session_key)
  redis.call('SPUBLISH', bucket_of(session_key) .. 'changes', session_key)
end

-- End a session: its hash and every index entry, whatever state it was in. Returns its user
-- id while the hash still says it.
local function drop(bucket, entry)
  local random = random_of(entry)
  local session = bucket .. 's:' .. random
  local owner = redis.call('HGET', session, 'u')
  if owner then
    redis.call('ZREM', bucket .. 'u:' .. owner, random)
    redis.call('DEL', session)
    announce(session)
  end
  index_remove(bucket .. 't', {entry})
  index_remove(bucket .. 'i', {ip_entry(entry)})
  redis.call('ZREM', bucket .. 'x', entry)
  return owner
end

-- A session hash reads as missing: did its session end, or has its slot only half moved? A
-- script that Redis sends to the node importing the slot (ASKING) sees only the keys that
-- moved already. Asking for the hash together with the index it was found through (one slot,
-- one key missing) is refused there ("non local key"), and the store runs the call again once
-- the slot has moved; on a settled node it just counts.
local function confirm_gone(session_key, index_key)
  redis.call('EXISTS', session_key, index_key)
end

-- End a session that ran out of time, and record that it did.
local function expire(bucket, entry, now)
  emit(bucket, EVENT.expired, entry, drop(bucket, entry), 'system', '', now)
end

-- Is this session (its VIEW values) live: hash present, not expired, in its user's index?
-- The user index is the last word: a session missing from it never validates.
local function is_live(bucket, random, view, now)
  return view[AT.h] and tonumber(view[AT.x]) > now
    and redis.call('ZSCORE', bucket .. 'u:' .. view[AT.u], random)
end

-- End many sessions of one bucket at once (their entries, in order): a few variadic calls a
-- thousand sessions instead of several calls each. Their user index is the caller's to clean.
local function drop_all(bucket, entries)
  for first = 1, #entries, 1000 do
    local chunk, sessions, ip_entries = {}, {}, {}
    for at = first, math.min(first + 999, #entries) do
      local entry = entries[at]
      chunk[#chunk + 1] = entry
      sessions[#sessions + 1] = bucket .. 's:' .. random_of(entry)
      ip_entries[#ip_entries + 1] = ip_entry(entry)
    end
    redis.call('DEL', unpack(sessions))
    for _, session in ipairs(sessions) do announce(session) end
    index_remove(bucket .. 't', chunk)
    index_remove(bucket .. 'i', ip_entries)
    redis.call('ZREM', bucket .. 'x', unpack(chunk))
  end
end

-- Drop the user's expired sessions, so the user index counts only live ones.
local function drop_expired(bucket, user_index, now)
  for _, random in ipairs(redis.call('ZRANGE', user_index, '-inf', now, 'BYSCORE')) do
    local created, ip = unpack(redis.call('HMGET', bucket .. 's:' .. random, 'c', 'ip'))
    if created then expire(bucket, entry_of(random, created, ip), now) end
    redis.call('ZREM', user_index, random)  -- a hash already gone: the sweep takes its entries
  end
end

-- Drop up to `budget` expired sessions of the bucket. Absolute expiry follows creation, so
-- the oldest entries of `t` go first until a live one; idle expiry is scored in `x`.
local function sweep(bucket, now, budget)
  local dropped = 0
  local entries, chunks = index_range(bucket .. 't', '-', '+', budget)
  for at, entry in ipairs(entries) do
    local session = bucket .. 's:' .. random_of(entry)
    local expires = redis.call('HGET', session, 'x')
    if expires and tonumber(expires) > now then break end
    if not expires then confirm_gone(session, chunks[at]) end
    expire(bucket, entry, now)
    dropped = dropped + 1
  end
  for _, entry in ipairs(redis.call('ZRANGE', bucket .. 'x', '-inf', now, 'BYSCORE', 'LIMIT', 0, budget)) do
    expire(bucket, entry, now)
    dropped = dropped + 1
  end
  return dropped
end

-- A client that lost a reply (a timeout, a dropped connection) runs the same call again. Every
-- script leaves the same state after a second run, but not every answer does: a second
-- revocation finds nothing left to end. A remembered script (scripts.py) runs as `answer`
-- here: its first answer, an integer or a list of them, is kept under the call's own memo key
-- for MEMO_MS (keys.py, put here by scripts.py), and a second run of that call gives it back.
local function remember(memo, answer)
  local kept = redis.call('GET', memo)
  if kept then
    if string.sub(kept, 1, 1) ~= '[' then return tonumber(kept) end
    local reply = {}
    for number in string.gmatch(kept, '[^,%[]+') do reply[#reply + 1] = tonumber(number) end
    return reply
  end
  local reply = answer()
  local text = tostring(reply)
  if type(reply) == 'table' then text = '[' .. table.concat(reply, ',') end
  redis.call('SET', memo, text, 'PX', MEMO_MS)
  return reply
end
