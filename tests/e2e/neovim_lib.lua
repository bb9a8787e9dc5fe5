-- Shared by the neovim_*.lua scripts that test_neovim.py drives: the test's arguments (JSON in
-- ACE_TEST_ARGS), failing with a message and status 3, polling, and the result file the Python
-- side reads. Load with `dofile(vim.env.ACE_TEST_LIB)`.
local T = {}

T.args = vim.json.decode(vim.env.ACE_TEST_ARGS)
T.result = {}

function T.fail(msg)
  io.stderr:write('neovim test: ' .. msg .. '\n')
  io.stderr:write('result so far: ' .. vim.json.encode(T.result) .. '\n')
  vim.cmd('cquit 3')
end

--- Poll `predicate` every 20 ms (serving LSP messages meanwhile); fail with `what` on timeout.
function T.wait(what, ms, predicate)
  if not vim.wait(ms, predicate, 20) then
    T.fail('timed out after ' .. ms .. ' ms waiting for ' .. what)
  end
end

function T.text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), '\n') .. '\n'
end

--- The ACE client attached to `bufnr`, once it has initialized.
function T.wait_client(bufnr)
  local client
  T.wait('the ACE client to attach and initialize', 15000, function()
    client = vim.lsp.get_clients({ bufnr = bufnr, name = 'ace' })[1]
    return client ~= nil and client.initialized
  end)
  return client
end

--- Write the result file for the Python side, then quit with status 0.
function T.finish()
  vim.fn.writefile({ vim.json.encode(T.result) }, T.args.result)
  vim.cmd('qall!')
end

return T
