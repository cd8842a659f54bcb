-- page.lua: one bucket's newest live sessions for an admin page, dropping what has ended.
-- KEYS[1] the bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] ip key ('' for every session)  ARGV[3] start below this position
--   ('' for the newest)  ARGV[4] live sessions wanted  ARGV[5] entries to examine at most
--   ARGV[6] 1 to count the matching live sessions  ARGV[7] events (lib.lua)
-- returns {done, last position examined, count, position, position, ...}: done is 1 when
--   nothing older is left in the bucket; count is -1 unless asked for. The sessions' views are
--   read afterwards, only for the positions that make the page.
local now = tonumber(ARGV[1])
local ip = ARGV[2]
local below = ARGV[3]
local wanted = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local bucket = bucket_of(KEYS[1])
events_from(ARGV[7])

sweep(bucket, now, budget)

local index, low, high = bucket .. 't', '-', '+'
if ip ~= '' then
  index = bucket .. 'i'
  low = '[' .. ip
  high = '[' .. ip .. '\255'
end
if below ~= '' then high = '(' .. ip .. below end

local count = -1
if ARGV[6] == '1' then count = redis.call('ZLEXCOUNT', index, low, '[' .. ip .. '\255') end

local found, last, examined = {}, '', 0
local entries = redis.call('ZRANGE', index, high, low, 'BYLEX', 'REV', 'LIMIT', 0, budget)
for _, member in ipairs(entries) do
  local entry = member
  if ip ~= '' then entry = ip_entry_back(member) end
  local random = random_of(entry)
  local expires, owner = unpack(redis.call('HMGET', bucket .. 's:' .. random, 'x', 'u'))
  if not expires then confirm_gone(bucket .. 's:' .. random, index) end
  examined = examined + 1
  last = string.sub(entry, 1, POSITION)
  if expires and tonumber(expires) > now
      and redis.call('ZSCORE', bucket .. 'u:' .. owner, random) then
    found[#found + 1] = last
    if #found >= wanted then break end
  else
    expire(bucket, entry, now)
    if count > 0 then count = count - 1 end
  end
end

local done = 0
if examined == #entries and #entries < budget then done = 1 end
local result = {done, last, count}
for _, position in ipairs(found) do result[#result + 1] = position end
return result
