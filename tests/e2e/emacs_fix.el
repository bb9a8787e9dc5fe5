;;; emacs_fix.el --- driven by test_emacs.py: a real eglot applies an ACE fix  -*- lexical-binding: t -*-

;; Run as `emacs --batch -Q -l emacs_fix.el' with ACE_TEST_ARGS set to a JSON object:
;;   {"file": PATH, "cmd": [PROGRAM, ARG...],
;;    "diagnostics": [{"line", "character", "end_line", "end_character", "message", "code",
;;                     "source"}]}
;; (0-based lines; columns in code points, as ruff counts them, i.e. Emacs characters).
;;
;; It opens FILE in python-mode, starts eglot with CMD as the `eglot-server-programs' entry
;; for python-mode (what a user writes as ("ace" "serve")), reports the diagnostics through a
;; flymake backend (a stand-in for a user's other linter), asks ACE for code actions with those
;; diagnostics in the context, runs the "Fix with ACE" action through eglot's own code path
;; (`workspace/executeCommand', then eglot's `workspace/applyEdit' handler edits the buffer,
;; after its default confirmation prompt, answered "y" on stdin), saves and exits 0.
;; Any failure exits 3 with a message (and the tail of eglot's events buffer) on stderr.
;; Shared helpers (`ace-test--log', `--fail', `--wait', `ace-test-args') are in emacs_lib.el.

(load (expand-file-name "emacs_lib" (file-name-directory load-file-name)) nil t)

(defvar ace-test--server nil)
(defvar eglot-sync-connect)

;; The user's set-up, with the test's command in place of ("ace" "serve").
(add-to-list 'eglot-server-programs (cons 'python-mode (plist-get ace-test-args :cmd)))

(defun ace-test--pos (line character)
  "Buffer position of 0-based LINE and CHARACTER (code points, = Emacs characters)."
  (save-excursion
    (goto-char (point-min))
    (forward-line line)
    (forward-char character)
    (point)))

(defun ace-test--linter (report-fn &rest _)
  "A flymake backend standing in for a user's linter: report the test's diagnostics."
  (funcall report-fn
           (mapcar (lambda (d)
                     (flymake-make-diagnostic
                      (current-buffer)
                      (ace-test--pos (plist-get d :line) (plist-get d :character))
                      (ace-test--pos (plist-get d :end_line) (plist-get d :end_character))
                      :error
                      (plist-get d :message)
                      (list (cons 'ace-test-lint d))))
                   (plist-get ace-test-args :diagnostics))))

(defun ace-test--lsp-diagnostic (diag)
  "The LSP Diagnostic for flymake DIAG, with eglot's own position conversion (UTF-16)."
  (let ((lint (cdr (assq 'ace-test-lint (flymake-diagnostic-data diag)))))
    (list :range (list :start (eglot--pos-to-lsp-position (flymake-diagnostic-beg diag))
                       :end (eglot--pos-to-lsp-position (flymake-diagnostic-end diag)))
          :severity 1
          :code (plist-get lint :code)
          :source (plist-get lint :source)
          :message (flymake-diagnostic-text diag))))

(condition-case err
    (let ((file (plist-get ace-test-args :file))
          (jsonrpc-default-request-timeout 60))
      (find-file file)
      (unless (eq major-mode 'python-mode)
        (ace-test--fail "%s opened in %s, not python-mode" file major-mode))
      ;; What `eglot-ensure' does on the next command (there is no command loop in --batch);
      ;; waiting for the handshake makes a failed start an error here, not in a sentinel.
      (let ((eglot-sync-connect t))
        (apply #'eglot (eglot--guess-contact)))
      (ace-test--wait "eglot to connect to the server" 30
                      (lambda () (and (eglot-current-server) eglot--managed-mode)))
      (setq ace-test--server (eglot-current-server))
      (ace-test--log "connected, server capabilities: codeActionProvider %S, executeCommand %S"
                     (eglot--server-capable :codeActionProvider)
                     (eglot--server-capable :executeCommandProvider :commands))

      ;; The other linter's diagnostics reach flymake next to eglot's own (ACE publishes none).
      (add-hook 'flymake-diagnostic-functions #'ace-test--linter nil t)
      (flymake-start)
      (ace-test--wait "the linter's flymake diagnostics" 10
                      (lambda () (cl-some (lambda (d) (assq 'ace-test-lint
                                                            (flymake-diagnostic-data d)))
                                          (flymake-diagnostics))))
      (let* ((diag (cl-find-if (lambda (d) (assq 'ace-test-lint (flymake-diagnostic-data d)))
                               (flymake-diagnostics)))
             (beg (flymake-diagnostic-beg diag))
             (end (flymake-diagnostic-end diag))
             (lsp-diag (ace-test--lsp-diagnostic diag))
             (version eglot--versioned-identifier)
             ;; The request `eglot-code-actions' makes, with the linter's diagnostic in the
             ;; context: eglot 1.9 itself only sends the diagnostics its own server published.
             (actions (jsonrpc-request
                       ace-test--server :textDocument/codeAction
                       (list :textDocument (eglot--TextDocumentIdentifier)
                             :range (list :start (eglot--pos-to-lsp-position beg)
                                          :end (eglot--pos-to-lsp-position end))
                             :context (list :diagnostics (vector lsp-diag)))
                       :deferred t))
             (ace (cl-find-if (lambda (a) (string-prefix-p "Fix with ACE" (plist-get a :title)))
                              actions)))
        (ace-test--log "sent diagnostic range %S" (plist-get lsp-diag :range))
        (ace-test--log "code actions: %S" (mapcar (lambda (a) (plist-get a :title)) actions))
        (unless ace (ace-test--fail "no \"Fix with ACE\" action among %S" actions))
        (when (plist-get ace :edit)
          (ace-test--fail "ACE sent an edit up front; expected a command: %S" ace))
        (unless (equal (plist-get (plist-get ace :command) :command) "ace.fix")
          (ace-test--fail "the ACE action carries no ace.fix command: %S" ace))
        ;; Pick it as the user would from the menu: with a kind and one action, eglot runs it
        ;; without asking, through `eglot-execute-command' (workspace/executeCommand).
        (let ((result (eglot--read-execute-code-action (list ace) ace-test--server "quickfix")))
          (ace-test--log "executeCommand answered %S" result)
          (unless (eq (plist-get result :applied) t)
            (ace-test--fail "the fix was not applied: %S" result)))
        (when (= version eglot--versioned-identifier)
          (ace-test--fail "eglot did not change the buffer"))
        (save-buffer)
        (ace-test--log "saved %s" file)
        (eglot-shutdown ace-test--server)
        (ace-test--log "server shut down")
        (kill-emacs 0)))
  (error (ace-test--fail "%s" (error-message-string err))))

;;; emacs_fix.el ends here
