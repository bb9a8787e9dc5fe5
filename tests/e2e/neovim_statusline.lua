-- Driven by test_neovim.py: start ACE through clients/neovim, add the README's statusline
-- component, wait for the server's first `ace/budget`, record what the statusline shows.
local T = dofile(vim.env.ACE_TEST_LIB)
local args = T.args

vim.opt.runtimepath:prepend(args.plugin)
vim.cmd.edit(args.file)
local bufnr = vim.api.nvim_get_current_buf()
vim.bo[bufnr].filetype = 'python'
local ace = require('ace')
ace.config.cmd = args.cmd
-- The README's line, as a user puts it in init.lua.
vim.o.statusline = vim.o.statusline .. ' %{v:lua.require("ace").statusline()}'
T.result.before = ace.statusline()

ace.start(bufnr)
T.wait("the server's first ace/budget notification", 15000, function() return ace.budget ~= nil end)
T.result.budget = ace.budget
T.result.component = ace.statusline()
T.result.statusline = vim.api.nvim_eval_statusline(vim.o.statusline, {}).str
T.finish()
