-- ACE for Neovim's built-in LSP client (Neovim >= 0.10).
--
--   require('ace').setup({ init_options = { tier = 'pro' } })
--   vim.keymap.set('n', '<leader>af', require('ace').fix)
--   vim.o.statusline = vim.o.statusline .. ' %{v:lua.require("ace").statusline()}'
--
-- Neovim sends a server only the diagnostics it published itself; ACE fixes diagnostics from any
-- source (ruff, eslint, nvim-lint...), so `fix()` and `fix_all()` pass every diagnostic of the
-- line (or buffer), from all namespaces, in LSP form.
local M = {}

M.config = {
  cmd = { 'ace', 'serve' },
  filetypes = {
    'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact',
    'go', 'rust', 'java', 'c', 'cpp', 'ruby',
  },
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' },
  init_options = {},
  settings = { ace = {} }, -- answered to workspace/configuration (section "ace")
}

--- The last `ace/budget` notification: {tier, user, spentToday, dailyLimit, ..., lastCall}.
M.budget = nil

local function on_budget(_, result)
  M.budget = result
  pcall(vim.cmd.redrawstatus)
end

--- Start (or reuse) the ACE client for a buffer; returns the client id.
function M.start(bufnr, config)
  config = config or M.config
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local root = vim.fs.root(bufnr, config.root_markers) or vim.fn.getcwd()
  return vim.lsp.start({
    name = 'ace',
    cmd = config.cmd,
    root_dir = root,
    init_options = config.init_options,
    settings = config.settings,
    handlers = { ['ace/budget'] = on_budget },
  }, { bufnr = bufnr })
end

-- A file buffer of one of the configured filetypes.
local function wants(bufnr)
  local bo = vim.bo[bufnr]
  return bo.buftype == '' and vim.tbl_contains(M.config.filetypes, bo.filetype)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
  vim.api.nvim_create_autocmd('FileType', {
    group = vim.api.nvim_create_augroup('ace', { clear = true }),
    pattern = M.config.filetypes,
    callback = function(args)
      if wants(args.buf) then M.start(args.buf) end
    end,
  })
  -- A plugin manager that loads ACE on `ft=python` calls setup() after FileType has fired for
  -- the buffer that triggered it: attach the buffers already open.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and wants(bufnr) then M.start(bufnr) end
  end
  vim.api.nvim_create_user_command('AceFix', M.fix, { desc = 'ACE: fix the diagnostics of this line' })
  vim.api.nvim_create_user_command('AceFixAll', M.fix_all, { desc = 'ACE: fix every diagnostic of the buffer' })
  vim.api.nvim_create_user_command('AceReview', function() M.review() end,
    { desc = 'ACE: review the function under the cursor' })
  vim.api.nvim_create_user_command('AceBudget', function()
    vim.notify(M.statusline() ~= '' and M.statusline() or 'ACE: no budget yet')
  end, { desc = 'ACE: show spend against budget' })
end

--- "ACE $0.42 / $5.00" for a statusline ('' before the first notification).
function M.statusline()
  local b = M.budget
  if type(b) ~= 'table' then return '' end
  local function num(v) return type(v) == 'number' and v or nil end -- JSON null may be vim.NIL
  local limit = num(b.dailyLimit) and string.format(' / $%.2f', b.dailyLimit) or ''
  return string.format('ACE $%.2f%s', num(b.spentToday) or 0, limit)
end

local function ace_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr, name = 'ace' })[1]
end

--- Diagnostics in LSP form, positioned in ACE's encoding. `vim.lsp.diagnostic.from` copies
--- byte columns into `character` as they are, or hands back another server's own LSP diagnostic
--- (`user_data.lsp`, in that server's encoding): ranges are recomputed from the buffer here.
local function to_lsp(bufnr, diagnostics)
  local client = ace_client(bufnr)
  local encoding = client and client.offset_encoding or 'utf-16'
  local line_count = vim.api.nvim_buf_line_count(bufnr)
  local function position(lnum, col)
    if lnum >= line_count then -- past the end: the start of the line after the last one
      return { line = line_count, character = 0 }
    end
    local text = vim.api.nvim_buf_get_lines(bufnr, lnum, lnum + 1, true)[1]
    col = math.max(0, math.min(col or 0, #text))
    return { line = lnum, character = vim.lsp.util.character_offset(bufnr, lnum, col, encoding) }
  end
  local out = {}
  for i, lsp_diagnostic in ipairs(vim.lsp.diagnostic.from(diagnostics)) do
    local d = diagnostics[i]
    local converted = vim.deepcopy(lsp_diagnostic) -- never change another server's user_data
    converted.range = {
      start = position(d.lnum, d.col),
      ['end'] = position(d.end_lnum or d.lnum, d.end_col or d.col),
    }
    out[i] = converted
  end
  return out
end

--- Every diagnostic on a line, from all sources, as LSP diagnostics.
function M.line_diagnostics(bufnr, lnum)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  lnum = lnum or (vim.api.nvim_win_get_cursor(0)[1] - 1)
  return to_lsp(bufnr, vim.diagnostic.get(bufnr, { lnum = lnum }))
end

local function ace_only(prefix)
  return function(action, client_id)
    local client = client_id and vim.lsp.get_client_by_id(client_id)
    return (not client or client.name == 'ace') and action.title:find(prefix, 1, true) == 1
  end
end

--- Offer ACE's fixes for the diagnostics under the cursor (applied at once when there is one).
function M.fix()
  vim.lsp.buf.code_action({
    context = { diagnostics = M.line_diagnostics(), only = { 'quickfix' } },
    filter = ace_only('Fix with ACE'),
    apply = true,
  })
end

--- Fix every diagnostic of the buffer in one edit (one model call per function).
function M.fix_all()
  local bufnr = vim.api.nvim_get_current_buf()
  vim.lsp.buf.code_action({
    context = {
      diagnostics = to_lsp(bufnr, vim.diagnostic.get(bufnr)),
      only = { 'source.fixAll.ace' },
    },
    filter = ace_only('Fix all with ACE'),
    apply = true,
  })
end

--- Review the function under the cursor; findings arrive as diagnostics (source "ace").
function M.review(callback)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = ace_client(bufnr)
  if not client then
    vim.notify('ACE is not running for this buffer', vim.log.levels.WARN)
    return
  end
  local pos = vim.lsp.util.make_position_params(0, client.offset_encoding).position
  local args = { uri = vim.uri_from_bufnr(bufnr), range = { start = pos, ['end'] = pos } }
  client:request('workspace/executeCommand', { command = 'ace.review', arguments = { args } },
    function(err, result)
      if err then
        vim.notify('ACE: ' .. err.message, vim.log.levels.ERROR)
      elseif result then
        vim.notify(string.format('ACE review: %d finding(s) by %s', #result.findings, result.model))
      end
      if callback then callback(err, result) end
    end, bufnr)
end

return M
