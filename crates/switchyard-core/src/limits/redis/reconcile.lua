-- Replaces an admitted request's token estimate with what it really used, in every scope
-- with a TPM (the same arithmetic as the in-process limiter's `reconcile`).
--
-- KEYS[i]    the hash of scope i (see admit.lua)
-- ARGV[1]    the tokens estimated at admission
-- ARGV[2]    the tokens really used
-- ARGV[3]    now in µs, or 0 for the Redis server's clock
-- ARGV[3+i]  scope i's tokens per minute
local now = tonumber(ARGV[3])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local estimated = tonumber(ARGV[1])
local actual = tonumber(ARGV[2])
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'r', 't')
  local t = tonumber(v[2])
  -- A scope whose state expired has nothing left to correct.
  if t then
    local iv = 60000000 / tonumber(ARGV[3 + i])
    if actual > estimated then
      t = math.max(t, now) + iv * (actual - estimated)
    else
      -- A refund never makes the bucket fuller than full.
      t = math.max(t - iv * (estimated - actual), now)
    end
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', t))
    local r = tonumber(v[1]) or 0
    redis.call('PEXPIRE', KEYS[i], math.ceil((math.max(r, t) - now) / 1000) + 1000)
  end
end
return 0
