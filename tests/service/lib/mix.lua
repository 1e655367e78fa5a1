-- wrk script of the server tests and benchmarks: PUT and GET of objects
-- under /v1/checkpoints/ with the API key from the environment (never argv).
--   ATREST_WRK_KEY   the API key
--   ATREST_WRK_MODE  "mix" (PUT and GET alternate), "put" or "get"
--   ATREST_WRK_SIZE  body bytes of a PUT
--   ATREST_WRK_NAMES how many names (pre-filled for GET)
--   ATREST_WRK_PREFIX the names' first component (default "wrk")
local key = os.getenv("ATREST_WRK_KEY")
local mode = os.getenv("ATREST_WRK_MODE") or "mix"
local size = tonumber(os.getenv("ATREST_WRK_SIZE") or "4096")
local names = tonumber(os.getenv("ATREST_WRK_NAMES") or "64")
local prefix = os.getenv("ATREST_WRK_PREFIX") or "wrk"
local body = string.rep("x", size)
local n = 0
local headers = {["Authorization"] = "Bearer " .. key}

request = function()
	n = n + 1
	local path = "/v1/checkpoints/" .. prefix .. "/" .. (n % names)
	if mode == "put" or (mode == "mix" and n % 2 == 0) then
		return wrk.format("PUT", path, headers, body)
	end
	return wrk.format("GET", path, headers)
end
