-- The REST shim, run by Envoy's Lua filter just before the gRPC-JSON transcoder.
--
-- Requests: the documents use query keys the transcoder cannot bind, so they are rewritten
-- into its dotted / repeated form first:
--   page[limit]=20&page[cursor]=abc  ->  page.limit=20&page.cursor=abc   (seed 002)
--   include=company,people           ->  include=company&include=people  (seed 002)
-- (percent-encoded brackets and commas, as browsers send them, are handled the same way).
--
-- Requests whose path or query percent-decodes to invalid UTF-8 are refused here with a 400
-- (formatted as JSON by the connection manager's local_reply_config): the transcoder would
-- pass the bytes on into a proto string field, the server could not even parse the request,
-- and the caller would get a 500.
--
-- A POST to the import face (`/data/...`) without a body is refused here with a 400: the
-- transcoder would turn "no body" into one empty item (`body: "invoices"` takes a single object
-- as a one-element list), and the caller would get a 200 listing that item's missing fields.
-- The buffer filter before this one has already read the whole body, so looking costs nothing.
--
-- Responses (REST only; native gRPC answers pass untouched):
--   * a 2xx hint in the `x-http-status` header (sent by a face servicer as initial metadata,
--     because gRPC cannot set `:status`) becomes the real status, e.g. 201 Created; the hint
--     header is removed;
--   * `grpc-status` / `grpc-message` are removed from successful answers. They must not be
--     removed from failed ones by a route rule: that would turn errors into 200s.

local function percent_decoded(text)
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

-- Well-formed UTF-8 (RFC 3629): no stray continuation bytes, overlong forms or surrogates.
local function valid_utf8(text)
  local i, n = 1, #text
  while i <= n do
    local c = text:byte(i)
    local len
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
    else
      return false
    end
    if i + len - 1 > n then
      return false
    end
    for j = i + 1, i + len - 1 do
      local cc = text:byte(j)
      if cc < 0x80 or cc > 0xBF then
        return false
      end
    end
    local c2 = text:byte(i + 1)
    if (c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F) or (c == 0xF0 and c2 < 0x90) or (c == 0xF4 and c2 > 0x8F) then
      return false
    end
    i = i + len
  end
  return true
end

local function split_commas(value)
  local parts = {}
  local normalized = value:gsub("%%2[Cc]", ",")
  for part in normalized:gmatch("[^,]+") do
    parts[#parts + 1] = part
  end
  return parts
end

local function rewrite_key(key)
  local decoded = key:gsub("%%5[Bb]", "["):gsub("%%5[Dd]", "]")
  if not decoded:find("[", 1, true) then
    return key
  end
  -- a[]=x (PHP and axios style for a repeated value) is a=x: the transcoder repeats a field
  -- given several times.
  decoded = decoded:gsub("%[%]$", "")
  -- a[b][c] -> a.b.c
  return (decoded:gsub("%[([^%]]*)%]", ".%1"))
end

local function rewrite_query(query)
  local pairs_out = {}
  for pair in query:gmatch("[^&]+") do
    local eq = pair:find("=", 1, true)
    local key = eq and pair:sub(1, eq - 1) or pair
    local value = eq and pair:sub(eq + 1) or nil
    key = rewrite_key(key)
    if key == "include" and value ~= nil then
      for _, part in ipairs(split_commas(value)) do
        pairs_out[#pairs_out + 1] = key .. "=" .. part
      end
    elseif value ~= nil then
      pairs_out[#pairs_out + 1] = key .. "=" .. value
    else
      pairs_out[#pairs_out + 1] = key
    end
  end
  return table.concat(pairs_out, "&")
end

-- True when the request carries no JSON at all: no body, or only blanks.
local function blank_body(request_handle)
  local body = request_handle:body()
  if body == nil or body:length() == 0 then
    return true
  end
  if body:length() > 64 then
    return false
  end
  return not body:getBytes(0, body:length()):find("%S")
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local path = headers:get(":path")
  if path == nil then
    return
  end
  if not valid_utf8(percent_decoded(path)) then
    request_handle:respond({[":status"] = "400"}, "path or query is not valid UTF-8 once percent-decoded")
    return
  end
  local is_grpc = (headers:get("content-type") or ""):sub(1, 16) == "application/grpc"
  local is_import = headers:get(":method") == "POST" and path:sub(1, 6) == "/data/"
  if is_import and not is_grpc and blank_body(request_handle) then
    request_handle:respond({[":status"] = "400"}, "request body is required: one JSON object or an array of them")
    return
  end
  local mark = path:find("?", 1, true)
  if mark == nil then
    return
  end
  local rewritten = rewrite_query(path:sub(mark + 1))
  if rewritten == "" then
    headers:replace(":path", path:sub(1, mark - 1))
  else
    headers:replace(":path", path:sub(1, mark) .. rewritten)
  end
end

function envoy_on_response(response_handle)
  local headers = response_handle:headers()
  local content_type = headers:get("content-type") or ""
  if content_type:sub(1, 16) == "application/grpc" then
    return
  end
  local status = headers:get(":status") or ""
  local hint = headers:get("x-http-status")
  if hint ~= nil then
    headers:remove("x-http-status")
    if status == "200" and hint:match("^2%d%d$") then
      headers:replace(":status", hint)
      status = hint
    end
  end
  if status:sub(1, 1) == "2" then
    headers:remove("grpc-status")
    headers:remove("grpc-message")
  end
end
