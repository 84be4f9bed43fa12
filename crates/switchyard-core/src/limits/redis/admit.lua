-- GCRA admission of one request in every scope it falls in, all or nothing.
-- The same arithmetic as the in-process limiter (limits/mod.rs), in microseconds.
--
-- KEYS[i]    the hash of scope i: `r` = requests TAT, `t` = tokens TAT (µs since the epoch)
-- ARGV[1]    the request's estimated tokens
-- ARGV[2]    now in µs, or 0 to use the Redis server's clock (TIME): every gateway then
--            agrees on time whatever their own clocks say
-- ARGV[1+2i] scope i's requests per minute (0: none)
-- ARGV[2+2i] scope i's tokens per minute (0: none)
--
-- Returns {who, what, wait_us, r_ahead_1, t_ahead_1, ..., r_ahead_n, t_ahead_n}: who = 0 when
-- the request was admitted (and charged in every scope), else the index of the scope that
-- refused it with the longest wait, what = 1 (requests) or 2 (tokens), wait_us = when a retry
-- can pass; the aheads (how far each TAT is past now, after the charge) give the headers.
local now = tonumber(ARGV[2])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local cost = tonumber(ARGV[1])
local MINUTE = 60000000
local n = #KEYS
local rpm, tpm, r, t = {}, {}, {}, {}
local who, what, wait = 0, 0, 0
for i = 1, n do
  rpm[i] = tonumber(ARGV[1 + 2 * i])
  tpm[i] = tonumber(ARGV[2 + 2 * i])
  local v = redis.call('HMGET', KEYS[i], 'r', 't')
  r[i] = tonumber(v[1]) or 0
  t[i] = tonumber(v[2]) or 0
  if rpm[i] > 0 then
    -- One request per interval, with a burst of a second's worth.
    local iv = MINUTE / rpm[i]
    local tau = iv * (math.max(1, math.ceil(rpm[i] / 60)) - 1)
    local ahead = r[i] - now
    if ahead > tau and ahead - tau > wait then
      who, what, wait = i, 1, ahead - tau
    end
  end
  if tpm[i] > 0 and t[i] > now then
    -- A minute's worth at once; a full bucket admits even a request over the whole TPM.
    local ahead = t[i] - now
    local need = MINUTE / tpm[i] * cost
    if ahead + need > MINUTE then
      local w = ahead + math.min(need, MINUTE) - MINUTE
      if w > wait then
        who, what, wait = i, 2, w
      end
    end
  end
end
if who == 0 then
  for i = 1, n do
    if rpm[i] > 0 then
      r[i] = math.max(r[i], now) + MINUTE / rpm[i]
    end
    if tpm[i] > 0 then
      t[i] = math.max(t[i], now) + MINUTE / tpm[i] * cost
    end
    redis.call('HSET', KEYS[i], 'r', string.format('%.17g', r[i]), 't', string.format('%.17g', t[i]))
    -- Once both TATs are past, the state equals no state: let an idle scope expire.
    redis.call('PEXPIRE', KEYS[i], math.ceil((math.max(r[i], t[i]) - now) / 1000) + 1000)
  end
end
local out = {who, what, math.ceil(wait)}
for i = 1, n do
  out[#out + 1] = math.ceil(math.max(0, r[i] - now))
  out[#out + 1] = math.ceil(math.max(0, t[i] - now))
end
return out
