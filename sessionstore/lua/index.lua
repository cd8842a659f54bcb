-- index.lua: a bucket's ordered indexes `t` and `i`, kept in chunks of at most CHUNK entries,
-- so every key of them stays a listpack (zset-max-listpack-entries is 128 by default) however
-- many sessions the bucket holds. scripts.py puts this file in front of lib.lua.
--
-- An index named K (`P:{T:bb}:t` or `P:{T:bb}:i`) is its base chunk K, which holds the entries
-- below the first boundary, and once K has filled up, chunks `K:<boundary in hex>`, each
-- holding the entries from its boundary up to the next one. The directory `K:d` lists the
-- boundaries (score 0, lex order); the hash `K:n` counts the entries outside the base chunk, so
-- counting a whole index is two calls however many chunks it has. A chunk that fills up
-- splits (`split`); one that falls below a quarter joins the chunk before it when both fit in
-- half of one. `K:sort` is scratch, inside a script only (index_remove). Every change goes
-- through these functions, in the scripts that change the sessions, so an index stays exact;
-- its directory and count live as long as its longest-lived chunk, and a chunk as long as its
-- longest-lived entry.
--
-- Ranges are ZRANGE BYLEX bounds ('-', '+', '[x', '(x'). Strings are never compared in Lua
-- (its `<` follows the server's locale): Redis orders them, byte by byte.

local CHUNK = 128

-- A key's TTL only ever grows: NX covers a key without one (GT alone would skip it).
local function keep_until(key, at)
  redis.call('PEXPIREAT', key, at, 'NX')
  redis.call('PEXPIREAT', key, at, 'GT')
end

local function hex(text)
  return string.format(string.rep('%02x', #text), string.byte(text, 1, -1))
end

local function chunk_key(index, boundary)
  if boundary == '' then return index end
  return index .. ':' .. hex(boundary)
end

-- The boundary of the chunk that holds (or would hold) `entry`: '' for the base chunk.
local function boundary_of(index, entry)
  return redis.call('ZRANGE', index .. ':d', '[' .. entry, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1] or ''
end

-- The boundary of the chunk a range bound falls in.
local function boundary_at(index, bound)
  if bound == '-' then return '' end
  if bound == '+' then
    return redis.call('ZRANGE', index .. ':d', '+', '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1] or ''
  end
  return boundary_of(index, string.sub(bound, 2))
end

local function next_boundary(index, boundary)
  return redis.call('ZRANGE', index .. ':d', '(' .. boundary, '+', 'BYLEX', 'LIMIT', 0, 1)[1]
end

local function previous_boundary(index, boundary)
  return redis.call('ZRANGE', index .. ':d', '(' .. boundary, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)[1] or ''
end

-- The directory and the count outlive every chunk (a chunk's entries are unreachable without).
local function keep_directory(index, at)
  if at > 0 and redis.call('EXISTS', index .. ':d') == 1 then
    keep_until(index .. ':d', at)
    keep_until(index .. ':n', at)
  end
end

local function count_outside_base(index, boundary, by)
  if boundary ~= '' and by ~= 0 then redis.call('HINCRBY', index .. ':n', 'n', by) end
end

local function zadd_all(key, entries)
  for first = 1, #entries, 1000 do
    local pairs_ = {}
    for at = first, math.min(first + 999, #entries) do
      pairs_[#pairs_ + 1] = 0
      pairs_[#pairs_ + 1] = entries[at]
    end
    redis.call('ZADD', key, unpack(pairs_))
  end
end

-- The shortest prefix of `upper` that still sorts above `lower` (entries never prefix one
-- another: each starts with a fixed-width position, or a length byte and an address).
local function fence(lower, upper)
  local at = 1
  while at < #upper and string.byte(lower, at) == string.byte(upper, at) do at = at + 1 end
  return string.sub(upper, 1, at)
end

-- Make room in a full chunk for `entry` (nil: just shed entries). An entry above all of it (`t` grows by its newest
-- end) starts a chunk of its own, so chunks behind stay full; otherwise the top half moves to
-- a new chunk. A chunk over CHUNK (written by layout 2, before chunks) sheds CHUNK / 2 a time.
local function split(index, boundary, chunk, entry)
  local moved, lower, upper = {}, nil, entry
  if entry and not redis.call('ZRANGE', chunk, '(' .. entry, '+', 'BYLEX', 'LIMIT', 0, 1)[1] then
    lower = redis.call('ZRANGE', chunk, -1, -1)[1]
  else
    local top = redis.call('ZRANGE', chunk, -(CHUNK / 2) - 1, -1)
    lower = table.remove(top, 1)
    moved, upper = top, top[1]
  end
  local new_boundary = fence(lower, upper)
  local new_chunk = chunk_key(index, new_boundary)
  if #moved > 0 then
    zadd_all(new_chunk, moved)
    redis.call('ZREM', chunk, unpack(moved))
    if boundary == '' then redis.call('HINCRBY', index .. ':n', 'n', #moved) end
  end
  redis.call('ZADD', index .. ':d', 0, new_boundary)
  redis.call('HINCRBY', index .. ':n', 'n', 0)
  local until_ = redis.call('PEXPIRETIME', chunk)
  if until_ > 0 then
    if #moved > 0 then keep_until(new_chunk, until_) end
    keep_until(index .. ':d', until_)
    keep_until(index .. ':n', until_)
  end
end

-- Add an entry that lives until `until_` (ms).
local function index_add(index, entry, until_)
  local boundary = boundary_of(index, entry)
  local chunk = chunk_key(index, boundary)
  if redis.call('ZCARD', chunk) >= CHUNK and not redis.call('ZSCORE', chunk, entry) then
    split(index, boundary, chunk, entry)
    boundary = boundary_of(index, entry)
    chunk = chunk_key(index, boundary)
  end
  count_outside_base(index, boundary, redis.call('ZADD', chunk, 0, entry))
  keep_until(chunk, until_)
  keep_directory(index, until_)
end

-- A chunk down to a quarter joins the one before it, when both fit in half a chunk.
local function join(index, boundary, chunk, left)
  local before = previous_boundary(index, boundary)
  local target = chunk_key(index, before)
  if left > 0 then
    if redis.call('ZCARD', target) + left > CHUNK / 2 then return end
    zadd_all(target, redis.call('ZRANGE', chunk, 0, -1))
    local until_ = redis.call('PEXPIRETIME', chunk)
    if until_ > 0 then keep_until(target, until_) end
    redis.call('DEL', chunk)
    if before == '' then redis.call('HINCRBY', index .. ':n', 'n', -left) end
  end
  redis.call('ZREM', index .. ':d', boundary)
  if redis.call('EXISTS', index .. ':d') == 0 then redis.call('DEL', index .. ':n') end
end

local function remove_from(index, boundary, entries)
  local chunk = chunk_key(index, boundary)
  local removed = 0
  for first = 1, #entries, 1000 do
    removed = removed + redis.call('ZREM', chunk, unpack(entries, first, math.min(first + 999, #entries)))
  end
  count_outside_base(index, boundary, -removed)
  if boundary ~= '' and removed > 0 then
    local left = redis.call('ZCARD', chunk)
    if left < CHUNK / 4 then join(index, boundary, chunk, left) end
  end
end

-- Remove entries (any number, any order): a ZREM per chunk they are in. Redis sorts them with
-- the directory's boundaries in a scratch key of the index's slot (never two strings compared
-- in Lua), so each entry's chunk is the last boundary before it, found with no call per entry.
local function index_remove(index, entries)
  if #entries == 0 then return end
  if redis.call('EXISTS', index .. ':d') == 0 then
    remove_from(index, '', entries)
    return
  end
  if #entries == 1 then
    remove_from(index, boundary_of(index, entries[1]), entries)
    return
  end
  local boundaries, removing = {}, {}
  for _, boundary in ipairs(redis.call('ZRANGE', index .. ':d', 0, -1)) do boundaries[boundary] = true end
  for _, entry in ipairs(entries) do removing[entry] = true end
  local scratch = index .. ':sort'
  zadd_all(scratch, redis.call('ZRANGE', index .. ':d', 0, -1))
  zadd_all(scratch, entries)
  local sorted = redis.call('ZRANGE', scratch, 0, -1)
  redis.call('DEL', scratch)
  local boundary, group = '', {}
  for _, item in ipairs(sorted) do
    if boundaries[item] then  -- a chunk starts here (an entry equal to it is in that chunk)
      if #group > 0 then remove_from(index, boundary, group) end
      boundary, group = item, {}
    end
    if removing[item] then group[#group + 1] = item end
  end
  if #group > 0 then remove_from(index, boundary, group) end
end

-- Set the kept count of the entries outside the base chunk to what those chunks hold. It is
-- exact unless a chunk was lost outside these functions (deleted by hand, evicted, or expired
-- before the sweep dropped its entries): the background sweep runs this for every bucket.
local function index_recount(index)
  local boundaries = redis.call('ZRANGE', index .. ':d', 0, -1)
  if #boundaries == 0 then return end
  local outside = 0
  for _, boundary in ipairs(boundaries) do
    outside = outside + redis.call('ZCARD', chunk_key(index, boundary))
  end
  if tonumber(redis.call('HGET', index .. ':n', 'n') or 0) ~= outside then
    redis.call('HSET', index .. ':n', 'n', outside)
    local until_ = redis.call('PEXPIRETIME', index .. ':d')
    if until_ > 0 then keep_until(index .. ':n', until_) end
  end
end

-- Each chunk a range spans, in the order a walk meets them: from the chunk `from` falls in to
-- the one `to` falls in, down the index when `backward`. The next boundary is looked up only
-- when the walk asks for it.
local function chunks_between(index, from, to, backward)
  local first, last, boundary, done = boundary_at(index, from), boundary_at(index, to), nil, false
  return function()
    if done then return nil end
    if boundary == nil then
      boundary = first
    elseif backward then
      boundary = previous_boundary(index, boundary)
    else
      boundary = next_boundary(index, boundary)
    end
    if boundary == nil or boundary == last or (backward and boundary == '') then done = true end
    return boundary
  end
end

-- Up to `limit` entries (-1: all) from `from` to `to` (down when `backward`), and the chunk
-- each was found in (confirm_gone asks for a session's hash together with it).
local function walk(index, from, to, limit, backward)
  local found, chunks = {}, {}
  for boundary in chunks_between(index, from, to, backward) do
    local chunk = chunk_key(index, boundary)
    local count = limit
    if limit >= 0 then count = limit - #found end
    local entries
    if backward then
      entries = redis.call('ZRANGE', chunk, from, to, 'BYLEX', 'REV', 'LIMIT', 0, count)
    else
      entries = redis.call('ZRANGE', chunk, from, to, 'BYLEX', 'LIMIT', 0, count)
    end
    for _, entry in ipairs(entries) do
      found[#found + 1] = entry
      chunks[#found] = chunk
    end
    if #found == limit then break end
  end
  return found, chunks
end

-- Oldest first, from `low` up to `high`.
local function index_range(index, low, high, limit)
  return walk(index, low, high, limit, false)
end

-- Newest first, from `high` down to `low`.
local function index_range_rev(index, high, low, limit)
  return walk(index, high, low, limit, true)
end

-- How many entries lie from `low` up to `high`: two calls for the whole index, else a call
-- per chunk the range spans.
local function index_count(index, low, high)
  if low == '-' and high == '+' then
    return redis.call('ZCARD', index) + tonumber(redis.call('HGET', index .. ':n', 'n') or 0)
  end
  local count = 0
  for boundary in chunks_between(index, low, high, false) do
    count = count + redis.call('ZLEXCOUNT', chunk_key(index, boundary), low, high)
  end
  return count
end
