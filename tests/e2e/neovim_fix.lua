-- Driven by test_neovim.py: open a file, start ACE through clients/neovim, set a linter's
-- diagnostic, run require('ace').fix(), wait for the edit, save, quit with a status code.
local args = vim.json.decode(vim.env.ACE_TEST_ARGS)
local function fail(msg)
  io.stderr:write('neovim test: ' .. msg .. '\n')
  vim.cmd('cquit 3')
end

vim.opt.runtimepath:prepend(args.plugin)
vim.cmd.edit(args.file)
local bufnr = vim.api.nvim_get_current_buf()
vim.bo[bufnr].filetype = 'python'
local ace = require('ace')
ace.config.cmd = args.cmd
local client_id = ace.start(bufnr)
if not vim.wait(15000, function()
  local c = vim.lsp.get_client_by_id(client_id)
  return c ~= nil and c.initialized
end, 20) then
  fail('the ACE client did not initialize')
end

local ns = vim.api.nvim_create_namespace('fake-ruff')
vim.diagnostic.set(ns, bufnr, args.diagnostics)
vim.api.nvim_win_set_cursor(0, { args.diagnostics[1].lnum + 1, args.diagnostics[1].col })
local before = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), '\n')
ace.fix()
if not vim.wait(20000, function()
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), '\n') ~= before
end, 20) then
  fail('the buffer was not changed by the fix')
end
vim.cmd.write()
vim.cmd('qall!')
