-- wrk script: purchases by many distinct users, round-robin over pre-minted tokens.
--
--   FG_TOKENS=tokens.txt FG_CAMPAIGN=bench-open wrk -t1 -c64 -d10s -s bench/wrk/purchase.lua URL
--
-- Tokens come from `flashgate-bench mint-tokens`: signing happens before the run. Every request
-- is formatted once, at start, so wrk spends its CPU sending, not building strings (it shares
-- the machine with the gateway and Redis).
local requests = {}
local body = '{"campaign_id":"' .. (os.getenv("FG_CAMPAIGN") or "bench-open") .. '"}'
for line in io.lines(os.getenv("FG_TOKENS") or "tokens.txt") do
  requests[#requests + 1] = wrk.format("POST", "/api/v1/orders", {
    ["Authorization"] = "Bearer " .. line,
    ["Content-Type"] = "application/json",
  }, body)
end
local count = #requests
local n = 0

request = function()
  n = n + 1
  if n > count then
    n = 1
  end
  return requests[n]
end
