-- binding_failed.lua: record that a bound session's binding failed (binding.py): a proof signed
-- by another key, a bound cookie presented after it expired. Revokes it too when asked.
-- KEYS[1] session hash   KEYS[2] its bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] secret hash  ARGV[3] events (lib.lua)  ARGV[4] the reason's name
-- (kinds.Reason: key_mismatch, bound_cookie_expired)
-- ARGV[5] `1` to revoke the session in the same step
-- returns 1 when recorded for a live session with that secret, else 0.
local now = tonumber(ARGV[1])
local reason = ({
  key_mismatch = REASON.key_mismatch,
  bound_cookie_expired = REASON.bound_cookie_expired,
})[ARGV[4]]
if not reason then return redis.error_reply('unknown binding failure') end
local bucket = bucket_of(KEYS[2])
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not live_with(bucket, KEYS[1], view, ARGV[2], now) then return 0 end
events_from(ARGV[3])
local entry = entry_of(random_in(KEYS[1]), view[AT.c], view[AT.ip])
emit(bucket, EVENT.binding_failed, entry, view[AT.u], ACTOR, reason, now)
if ARGV[5] == '1' then
  drop(bucket, entry)
  emit(bucket, EVENT.revoked, entry, view[AT.u], ACTOR, reason, now)
end
return 1
