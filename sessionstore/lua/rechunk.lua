-- rechunk.lua: put an index that layout 2 wrote whole into chunks (`sessionstore migrate`).
-- KEYS[1] a bucket's `t` or `i` index  ARGV[1] entries to move at most in this call
-- returns 1 when the index needs another call, else 0. Safe to stop and run again anywhere:
-- each step leaves a valid index, which the other scripts read and change meanwhile.
local index = KEYS[1]
local budget = tonumber(ARGV[1])
local moved = 0

-- A chunk that was over CHUNK keeps the big encoding Redis gave it: write it afresh.
local function compact(chunk)
  local encoding = redis.pcall('OBJECT', 'ENCODING', chunk)
  if encoding ~= 'skiplist' then return end
  local entries = redis.call('ZRANGE', chunk, 0, -1)
  local until_ = redis.call('PEXPIRETIME', chunk)
  redis.call('DEL', chunk)
  zadd_all(chunk, entries)
  if until_ > 0 then redis.call('PEXPIREAT', chunk, until_) end
end

local boundary = ''
while boundary do
  local chunk = chunk_key(index, boundary)
  while redis.call('ZCARD', chunk) > CHUNK do
    if moved >= budget then return 1 end
    split(index, boundary, chunk, nil)
    moved = moved + CHUNK / 2
  end
  compact(chunk)
  boundary = next_boundary(index, boundary)
end
return 0
