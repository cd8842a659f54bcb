-- page.lua: one bucket's share of an admin listing, newest first, dropping what has ended.
-- KEYS[1] the bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] ip key ('' for every session)  ARGV[3] start below this position
--   ('' for the newest)  ARGV[4] live sessions wanted  ARGV[5] entries to examine at most
--   ARGV[6] 1 to count the matching live sessions
-- returns {done, last position examined, count, position, VIEW, position, VIEW, ...}: done is
--   1 when nothing older is left in the bucket; count is -1 unless asked for.
local now = tonumber(ARGV[1])
local ip = ARGV[2]
local below = ARGV[3]
local wanted = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local bucket = bucket_of(KEYS[1])

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

local found, last = {}, ''
local entries = redis.call('ZRANGE', index, high, low, 'BYLEX', 'REV', 'LIMIT', 0, budget)
local examined = 0
for _, member in ipairs(entries) do
  local entry = member
  if ip ~= '' then entry = ip_entry_back(member) end
  local position = string.sub(entry, 1, POSITION)
  local random = random_of(entry)
  local view = redis.call('HMGET', bucket .. 's:' .. random, unpack(VIEW))
  examined = examined + 1
  last = position
  if is_live(bucket, random, view, now) then
    view[AT.h] = ''
    found[#found + 1] = position
    found[#found + 1] = view
    if #found / 2 >= wanted then break end
  else
    drop(bucket, entry)
    if count > 0 then count = count - 1 end
  end
end

local done = 0
if examined == #entries and #entries < budget then done = 1 end
local result = {done, last, count}
for _, value in ipairs(found) do result[#result + 1] = value end
return result
