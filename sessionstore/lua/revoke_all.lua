-- revoke_all.lua: end every session of one user (optionally but one), atomically, with every
-- index entry of them.
-- KEYS[1] user index   KEYS[2] the same bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] random part to keep ('' for none)
-- returns the count of live sessions revoked.
local now = tonumber(ARGV[1])
local keep = ARGV[2]
local bucket = bucket_of(KEYS[2])

-- Read everything before the first write: if a hash turns out to be on another node (a slot
-- mid-migration), the script fails having changed nothing, and its rerun counts correctly.
local revoked, doomed, gone = 0, {}, {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local random = members[i]
  if random ~= keep then
    local created, ip, expires = unpack(redis.call('HMGET', bucket .. 's:' .. random, 'c', 'ip', 'x'))
    if created then
      doomed[#doomed + 1] = entry_of(random, created, ip)
      if tonumber(expires) > now and tonumber(members[i + 1]) > now then revoked = revoked + 1 end
    else
      gone[#gone + 1] = random
    end
  end
end

for _, entry in ipairs(doomed) do drop(bucket, entry) end
for _, random in ipairs(gone) do redis.call('ZREM', KEYS[1], random) end
sweep(bucket, now, 8)
return revoked
