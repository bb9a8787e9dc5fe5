-- ACE for Neovim's built-in LSP client (Neovim >= 0.10).
--
--   require('ace').setup({ init_options = { tier = 'pro' } })
--   vim.keymap.set('n', '<leader>af', require('ace').fix)
--
-- Neovim sends a server only the diagnostics it published itself; ACE fixes diagnostics from any
-- source (ruff, eslint, nvim-lint...), so `fix()` passes every diagnostic on the cursor line.
local M = {}

M.config = {
  cmd = { 'ace', 'serve' },
  filetypes = {
    'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'java', 'c', 'cpp', 'ruby',
  },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' },
  init_options = {},
}

--- Start (or reuse) the ACE client for a buffer.
function M.start(bufnr, config)
  config = config or M.config
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local root = vim.fs.root(bufnr, config.root_markers) or vim.fn.getcwd()
  return vim.lsp.start({
    name = 'ace',
    cmd = config.cmd,
    root_dir = root,
    init_options = config.init_options,
  }, { bufnr = bufnr })
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
  vim.api.nvim_create_autocmd('FileType', {
    group = vim.api.nvim_create_augroup('ace', { clear = true }),
    pattern = M.config.filetypes,
    callback = function(args) M.start(args.buf) end,
  })
end

--- Every diagnostic on a line, from all sources, as LSP diagnostics.
function M.line_diagnostics(bufnr, lnum)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  lnum = lnum or (vim.api.nvim_win_get_cursor(0)[1] - 1)
  return vim.lsp.diagnostic.from(vim.diagnostic.get(bufnr, { lnum = lnum }))
end

--- Offer ACE's fixes for the diagnostics under the cursor (applied at once when there is one).
function M.fix()
  vim.lsp.buf.code_action({
    context = { diagnostics = M.line_diagnostics(), only = { 'quickfix' } },
    filter = function(action, client_id)
      local client = client_id and vim.lsp.get_client_by_id(client_id)
      return (not client or client.name == 'ace') and action.title:find('^Fix with ACE') ~= nil
    end,
    apply = true,
  })
end

return M
