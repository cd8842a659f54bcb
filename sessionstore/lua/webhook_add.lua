-- webhook_add.lua: register a webhook unless its tenant has the most it may have, at once.
-- KEYS[1] the tenant's webhook id set   KEYS[2] the new webhook's hash (both in `{T}`'s slot)
-- ARGV[1] the most a tenant may have   ARGV[2] the webhook id   ARGV[3..] field, value, ...
-- returns 1 when registered (or already was: safe to run again), 0 when the tenant is full.
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
-- The whole record, then the index entry: nothing lists an id without its record.
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('SADD', KEYS[1], ARGV[2])
return 1
