-- revoke_all.lua: end every session of one user (optionally but one), atomically, with every
-- index entry of them.
-- KEYS[1] user index   KEYS[2] the same bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] random part to keep ('' for none)  ARGV[3] user id
-- ARGV[4] events (lib.lua): each live session ended is recorded as revoked, reason revoke_all
-- returns {count of live sessions revoked, count of sessions found without their user index}.
local now = tonumber(ARGV[1])
local keep = ARGV[2]
local bucket = bucket_of(KEYS[2])
events_from(ARGV[4])

-- No user index: the user has no sessions, or the index was deleted (by hand, or evicted
-- under a policy we warn about). Then look through the whole bucket, so a lost index can
-- never make "sign out everywhere" miss a session: those found are ended, and reported.
if redis.call('EXISTS', KEYS[1]) == 0 then
  local orphans = {}
  for _, entry in ipairs((index_range(KEYS[2], '-', '+', -1))) do
    local owner = redis.call('HGET', bucket .. 's:' .. random_of(entry), 'u')
    if owner == ARGV[3] and random_of(entry) ~= keep then orphans[#orphans + 1] = entry end
  end
  drop_all(bucket, orphans)
  for _, entry in ipairs(orphans) do emit(bucket, EVENT.revoked, entry, ARGV[3], ACTOR, REASON.revoke_all, now) end
  return {0, #orphans}
end

-- Read everything before the first write: if a hash turns out to be on another node (a slot
-- mid-migration), the script fails having changed nothing, and its rerun counts correctly.
local revoked, doomed, members, kinds = 0, {}, {}, {}
local indexed = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #indexed, 2 do
  local random = indexed[i]
  if random ~= keep then
    members[#members + 1] = random
    local created, ip, expires = unpack(redis.call('HMGET', bucket .. 's:' .. random, 'c', 'ip', 'x'))
    if created then
      doomed[#doomed + 1] = entry_of(random, created, ip)
      kinds[#doomed] = 'x'
      if tonumber(expires) > now and tonumber(indexed[i + 1]) > now then
        revoked = revoked + 1
        kinds[#doomed] = 'r'
      end
    end
  end
end

drop_all(bucket, doomed)
for at, entry in ipairs(doomed) do
  if kinds[at] == 'r' then
    emit(bucket, EVENT.revoked, entry, ARGV[3], ACTOR, REASON.revoke_all, now)
  else
    emit(bucket, EVENT.expired, entry, ARGV[3], 'system', '', now)
  end
end
if keep == '' or #members * 2 == #indexed then
  redis.call('DEL', KEYS[1])
else
  for first = 1, #members, 1000 do
    redis.call('ZREM', KEYS[1], unpack(members, first, math.min(first + 999, #members)))
  end
end
sweep(bucket, now, 8)
return {revoked, 0}
