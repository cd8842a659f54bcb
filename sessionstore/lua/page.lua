-- page.lua: one bucket's newest live sessions for an admin page, dropping what has ended.
-- KEYS[1] the bucket's `t` index (names the bucket)
-- ARGV[1] now_ms  ARGV[2] ip key ('' for every session)  ARGV[3] start below this position
--   ('' for the newest)  ARGV[4] live sessions wanted  ARGV[5] entries to examine at most
--   ARGV[6] 0, or N to count the matching live sessions (exactly when at most N entries
--   match: each is checked)  ARGV[7] events (lib.lua)  ARGV[8] '1' from the background sweep, in
--   the bucket's turn (sweeping.py): also count the chunks of both indexes again
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

-- Whether the session behind an index entry is live: its hash says it has not ended, and its
-- user's index lists it (the last word, as for validate).
local function live(bucket, random, now, found_in)
  local session = bucket .. 's:' .. random
  local expires, owner = unpack(redis.call('HMGET', session, 'x', 'u'))
  if not expires then
    confirm_gone(session, found_in)
    return false
  end
  return tonumber(expires) > now and redis.call('ZSCORE', bucket .. 'u:' .. owner, random)
end

sweep(bucket, now, budget)
if ARGV[8] == '1' then
  index_recount(bucket .. 't')
  index_recount(bucket .. 'i')
end

local index, low, high, top = bucket .. 't', '-', '+', '+'
if ip ~= '' then
  index = bucket .. 'i'
  low = '[' .. ip
  high = '[' .. ip .. '\255'
  top = high
end
if below ~= '' then high = '(' .. ip .. below end

-- A session that ended out of order (a shorter lifetime set by another process, a hash
-- deleted or evicted) is not reached by the sweep: a small range is checked one by one and
-- what has ended is dropped, so the count is exact there.
local count = -1
local checked = tonumber(ARGV[6])
if checked > 0 then
  count = index_count(index, low, top)
  if count <= checked then
    local members, chunks = index_range(index, low, top, -1)
    for at, member in ipairs(members) do
      local entry = member
      if ip ~= '' then entry = ip_entry_back(member) end
      if not live(bucket, random_of(entry), now, chunks[at]) then
        expire(bucket, entry, now)
        count = count - 1
      end
    end
  end
end

local found, last, examined = {}, '', 0
local entries, chunks = index_range_rev(index, high, low, budget)
for at, member in ipairs(entries) do
  local entry = member
  if ip ~= '' then entry = ip_entry_back(member) end
  examined = examined + 1
  last = string.sub(entry, 1, POSITION)
  if live(bucket, random_of(entry), now, chunks[at]) then
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
