-- revoke_all.lua: end every session of one user (optionally but one), atomically.
-- KEYS[1] user index zset. The session hashes are named from KEYS[1]'s own prefix, so
--   they share its {tenant:tag} slot. Validity lives in the index: once this script has
--   emptied it, no session of the user validates, even one whose hash could not be deleted.
-- ARGV[1] now_ms  ARGV[2] member to keep ('' for none)
-- returns {count of live sessions revoked, member, ip, member, ip, ...}
local now = tonumber(ARGV[1])
local keep = ARGV[2]
local session_prefix = string.sub(KEYS[1], 1, -2) .. 's:'

-- Read everything before the first write: if a hash turns out to be on another node (a slot
-- mid-migration), the script fails having changed nothing, and its rerun counts correctly.
local result, doomed = {0}, {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local member = members[i]
  if member ~= keep then
    local ip = redis.call('HGET', session_prefix .. member, 'ip')
    if ip and tonumber(members[i + 1]) > now then
      result[1] = result[1] + 1
      result[#result + 1] = member
      result[#result + 1] = ip
    end
    doomed[#doomed + 1] = member
  end
end

for _, member in ipairs(doomed) do
  redis.call('DEL', session_prefix .. member)
end
if keep == '' then
  redis.call('DEL', KEYS[1])
else
  for _, member in ipairs(doomed) do
    redis.call('ZREM', KEYS[1], member)
  end
end
return result
