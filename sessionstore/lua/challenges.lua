-- challenges.lua: the DBSC challenges a session holds (binding.py), put after lib.lua in the
-- scripts that issue or take them. A session keeps up to four in its own hash, fields n0..n3,
-- each `<kind><challenge>:<expiry ms>:<sequence>`: kind `r` for registration, `f` for refresh.
-- A few, since a browser's proof over an older challenge may arrive after a newer one was
-- issued.

local SLOTS = {'n0', 'n1', 'n2', 'n3'}

local function parse_challenge(stored)
  local value, expiry, sequence = string.match(stored or '', '^(.*):(%d+):(%d+)$')
  if not value then return nil, 0, 0 end
  return value, tonumber(expiry), tonumber(sequence)
end

-- Keep a challenge: in an empty slot, else in place of the one that expires first (of those,
-- the one issued first). The one sent ahead of the next refresh lives longest, so a burst of
-- requests for challenges does not push out what the browser holds.
local function keep_challenge(session, value, expires)
  local held = redis.call('HMGET', session, unpack(SLOTS))
  local slot, newest = nil, 0
  local soonest, first = math.huge, math.huge
  for at = 1, #SLOTS do
    local _, expiry, sequence = parse_challenge(held[at])
    newest = math.max(newest, sequence)
    if not held[at] then
      slot, soonest, first = at, -1, -1
    elseif expiry < soonest or (expiry == soonest and sequence < first) then
      slot, soonest, first = at, expiry, sequence
    end
  end
  redis.call('HSET', session, SLOTS[slot], value .. ':' .. expires .. ':' .. (newest + 1))
end

-- Take a challenge (kind and value): gone once taken, so each is used once. True when it was
-- held and had not expired.
local function take_challenge(session, value, now)
  local held = redis.call('HMGET', session, unpack(SLOTS))
  for at = 1, #SLOTS do
    local challenge, expiry = parse_challenge(held[at])
    if challenge == value then
      redis.call('HDEL', session, SLOTS[at])
      return expiry > now
    end
  end
  return false
end

-- Forget every challenge of a kind (registration ones, once the session is bound).
local function drop_challenges(session, kind)
  local held = redis.call('HMGET', session, unpack(SLOTS))
  for at = 1, #SLOTS do
    if held[at] and string.sub(held[at], 1, 1) == kind then redis.call('HDEL', session, SLOTS[at]) end
  end
end

-- Whether a session (its VIEW values) is live and holds the secret hash `secret`.
local function live_with(bucket, session, view, secret, now)
  return view[AT.h] == secret and is_live(bucket, random_in(session), view, now)
end
