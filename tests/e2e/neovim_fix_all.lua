-- Driven by test_neovim.py: a linter's namespace holds two diagnostics on different lines;
-- `:AceFixAll` must fix both with one workspace edit. Records the diagnostics the module sent in
-- the codeAction request, every workspace edit Neovim applied and the user in ACE's budget (from
-- `settings`, answered to workspace/configuration), then saves the file.
local T = dofile(vim.env.ACE_TEST_LIB)
local args = T.args

vim.opt.runtimepath:prepend(args.plugin)
local ace = require('ace')
ace.setup({ cmd = args.cmd, settings = { ace = { userId = args.user } } })
vim.cmd.edit(args.file)
local bufnr = vim.api.nvim_get_current_buf()
vim.bo[bufnr].filetype = 'python' -- FileType: setup's autocmd starts the client
local client = T.wait_client(bufnr)
T.result.offset_encoding = client.offset_encoding

T.result.sent = {}
local request = client.request
client.request = function(self, method, params, ...)
  if method == 'textDocument/codeAction' then
    local context = params.context
    table.insert(T.result.sent, { only = context.only, diagnostics = context.diagnostics })
  end
  return request(self, method, params, ...)
end
T.result.applied = {}
local apply = vim.lsp.util.apply_workspace_edit
vim.lsp.util.apply_workspace_edit = function(edit, encoding, ...)
  local ret = apply(edit, encoding, ...)
  table.insert(T.result.applied, { edit = edit, text = T.text(bufnr) })
  return ret
end

vim.diagnostic.set(vim.api.nvim_create_namespace('fake-linter'), bufnr, args.diagnostics)
vim.api.nvim_win_set_cursor(0, { 1, 0 }) -- fix-all does not depend on the cursor
vim.cmd('AceFixAll')
T.wait('the fix-all edit', 20000, function() return #T.result.applied > 0 end)
T.wait('ace/budget', 5000, function() return ace.budget ~= nil end)
T.result.user = ace.budget.user
vim.wait(200, function() return #T.result.applied > 1 end, 20) -- a second edit would be a bug
vim.cmd.write()
T.finish()
