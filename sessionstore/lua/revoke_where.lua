-- revoke_where.lua: end one bucket's sessions that match a filter (every session, or those
-- from one IP), a batch at a time, each user's matching sessions in one step.
-- KEYS[1] the bucket's `t` index (names the bucket)  KEYS[2] one user's index, when the call
--   is for that user alone; otherwise the users are those of a batch of matching sessions
-- ARGV[1] now_ms  ARGV[2] ip key ('' for any IP)
--   ARGV[3] sessions that pick the users of a batch (bounds the time one call holds Redis)
--   ARGV[4] events (lib.lua): each live session ended is recorded as revoked, reason bulk
-- returns {live sessions revoked, 1 when the bucket may hold more matches, else 0, entries
--   taken out of the bucket}.
local now = tonumber(ARGV[1])
local ip, batch = ARGV[2], tonumber(ARGV[3])
local bucket = bucket_of(KEYS[1])
events_from(ARGV[4])

-- The users whose matching sessions this call ends: the one asked for, or the owners of the
-- first `batch` matching entries. An entry whose hash is gone (ended, never cleaned) is
-- dropped on the way and counts as nothing.
local user_indexes, seen, strays, seeds, chunks, found = {}, {}, {}, {}, {}, {}
if KEYS[2] then
  user_indexes[1] = KEYS[2]
elseif ip == '' then
  seeds, chunks = index_range(bucket .. 't', '-', '+', batch)
else
  seeds, chunks = index_range(bucket .. 'i', '[' .. ip, '[' .. ip .. '\255', batch)
end
for at, member in ipairs(seeds) do
  local entry = member
  if ip ~= '' then entry = ip_entry_back(member) end
  local session = bucket .. 's:' .. random_of(entry)
  local owner, expires = unpack(redis.call('HMGET', session, 'u', 'x'))
  if not owner then
    confirm_gone(session, chunks[at])
    strays[#strays + 1] = entry
  else
    found[#found + 1] = {entry, owner, expires}
    if not seen[owner] then
      seen[owner] = true
      user_indexes[#user_indexes + 1] = bucket .. 'u:' .. owner
    end
  end
end

-- Read everything before the first write, as revoke_all does (a slot mid-migration fails the
-- call before it changed anything).
local revoked, doomed, unindexed, owners, kinds, ending = 0, {}, {}, {}, {}, {}
for _, user_index in ipairs(user_indexes) do
  local indexed = redis.call('ZRANGE', user_index, 0, -1, 'WITHSCORES')
  local members = {}
  for at = 1, #indexed, 2 do
    local random = indexed[at]
    local created, session_ip, expires = unpack(redis.call('HMGET', bucket .. 's:' .. random, 'c', 'ip', 'x'))
    if not created then
      members[#members + 1] = random
    elseif ip == '' or string.char(#session_ip) .. session_ip == ip then
      members[#members + 1] = random
      doomed[#doomed + 1] = entry_of(random, created, session_ip)
      owners[#doomed] = string.match(user_index, '}:u:(.*)$')
      kinds[#doomed] = 'x'
      ending[random] = true
      if tonumber(expires) > now and tonumber(indexed[at + 1]) > now then
        revoked = revoked + 1
        kinds[#doomed] = 'r'
      end
    end
  end
  unindexed[#unindexed + 1] = {user_index, members}
end

-- A matching session its user's index does not list (the index was deleted by hand, or
-- evicted) never validates, but would be found again by every call: it ends here, as
-- revoke_all's orphans do, so each call takes at least its batch out of the bucket.
for _, seed in ipairs(found) do
  local entry, owner, expires = seed[1], seed[2], seed[3]
  if not ending[random_of(entry)] then
    doomed[#doomed + 1] = entry
    owners[#doomed] = owner
    kinds[#doomed] = 'x'
    if tonumber(expires) > now then kinds[#doomed] = 'o' end
  end
end

drop_all(bucket, strays)
drop_all(bucket, doomed)
for _, entry in ipairs(strays) do emit(bucket, EVENT.expired, entry, nil, 'system', '', now) end
for at, entry in ipairs(doomed) do
  if kinds[at] ~= 'x' then
    emit(bucket, EVENT.revoked, entry, owners[at], ACTOR, REASON.bulk, now)
  else
    emit(bucket, EVENT.expired, entry, owners[at], 'system', '', now)
  end
end
for _, pair in ipairs(unindexed) do
  local user_index, members = pair[1], pair[2]
  for first = 1, #members, 1000 do
    redis.call('ZREM', user_index, unpack(members, first, math.min(first + 999, #members)))
  end
end

local more = 0
if #seeds == batch then more = 1 end
return {revoked, more, #strays + #doomed}
