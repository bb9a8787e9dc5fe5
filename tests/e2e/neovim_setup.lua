-- Driven by test_neovim.py: the set-up users copy from the README. A Python buffer is already open
-- when setup() runs (a plugin manager loading ACE on `ft=python`); setup() must attach it. Then
-- opening the test's file and its FileType event must start (or reuse) the client; `:AceBudget`
-- shows the spend; `:AceFix` with no linter at all fixes the cursor's line (the server finds
-- ruff's diagnostics itself); the file is saved.
local T = dofile(vim.env.ACE_TEST_LIB)
local args = T.args

vim.opt.runtimepath:prepend(args.plugin)
vim.cmd.edit(args.early)
local early = vim.api.nvim_get_current_buf()
vim.bo[early].filetype = 'python' -- before setup(): no autocmd sees this

local notes = {}
vim.notify = function(msg) table.insert(notes, msg) end

require('ace').setup({ cmd = args.cmd })
T.result.commands = {}
for _, name in ipairs({ 'AceFix', 'AceFixAll', 'AceReview', 'AceBudget' }) do
  T.result.commands[name] = vim.fn.exists(':' .. name) == 2
end
local early_client = T.wait_client(early)

vim.cmd.edit(args.file)
local bufnr = vim.api.nvim_get_current_buf()
T.result.clients_before_filetype = #vim.lsp.get_clients({ bufnr = bufnr, name = 'ace' })
vim.bo[bufnr].filetype = 'python' -- what filetype detection does; fires FileType
local client = T.wait_client(bufnr)
T.result.same_client = client.id == early_client.id
T.result.clients = #vim.lsp.get_clients({ name = 'ace' })

T.wait('ace/budget', 15000, function() return require('ace').budget ~= nil end)
vim.cmd('AceBudget')
T.result.notes = notes

vim.api.nvim_win_set_cursor(0, { args.line, 0 })
local before = T.text(bufnr)
vim.cmd('AceFix')
T.wait('the fix of the line', 20000, function() return T.text(bufnr) ~= before end)
vim.cmd.write()
T.finish()
