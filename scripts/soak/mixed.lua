-- A mixed read/write load for wrk (scripts/soak.sh): 70% reads of one player, 15% list pages,
-- 10% creates, 5% merge patches. Player ids come from SOAK_IDS (a file of one id per line).
local ids = {}
local token = os.getenv("SOAK_TOKEN")
for line in io.lines(os.getenv("SOAK_IDS")) do ids[#ids + 1] = line end
local n = 0

request = function()
  n = n + 1
  local pick = math.random(100)
  local id = ids[math.random(#ids)]
  local headers = { ["Authorization"] = "Bearer " .. token }
  if pick <= 70 then
    return wrk.format("GET", "/v1/players/" .. id, headers)
  elseif pick <= 85 then
    return wrk.format("GET", "/v1/players?limit=50", headers)
  elseif pick <= 95 then
    headers["Content-Type"] = "application/json"
    local body = string.format(
      '{"name":"Soak %d %d","date_of_birth":"1999-05-0%d","country":"ENG","team":"Soak","position":"midfielder"}',
      n, math.random(1000000), 1 + n % 9)
    return wrk.format("POST", "/v1/players", headers, body)
  else
    headers["Content-Type"] = "application/merge-patch+json"
    return wrk.format("PATCH", "/v1/players/" .. id, headers,
      string.format('{"team":"Soak %d"}', math.random(20)))
  end
end

done = function(summary, latency, requests)
  -- One machine-readable line for soak.sh: requests, errors, p99 in ms.
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("SOAK %d %d %.2f\n", summary.requests, errors,
    latency:percentile(99) / 1000))
end
