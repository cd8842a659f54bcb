-- read.lua: an admin's view of one session, by id; never records activity.
-- KEYS[1] session hash   KEYS[2] user index zset   (one {tenant:tag} hash tag)
-- ARGV[1] now_ms  ARGV[2] member (the session id's random part)
-- returns the session's VIEW values (secret hash blanked), or false.
local VIEW = {'h', 'x', 'a', 'X', 'u', 'ip', 'am', 'm', 'dt', 'do', 'db', 'c', 'lc', 'lk',
  'ua0', 'ua1', 'ua2', 'ua3', 'ua4', 'ua5', 'ua6', 'ua7', 'ua8', 'ua9', 'ua10', 'ua11', 'ua12',
  'ua13', 'ua14', 'ua15'}  -- codec.VIEW
local now = tonumber(ARGV[1])
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then return false end
local view = redis.call('HMGET', KEYS[1], unpack(VIEW))
if not view[1] or tonumber(view[2]) <= now then return false end
view[1] = ''
return view
