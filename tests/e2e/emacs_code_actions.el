;;; emacs_code_actions.el --- driven by test_emacs.py: eglot's stock code-action path  -*- lexical-binding: t -*-

;; Run as `emacs --batch -Q -l emacs_code_actions.el' with ACE_TEST_ARGS set to a JSON object:
;;   {"file": PATH, "cmd": [PROGRAM, ARG...], "line": N, "character": C, "user": USER-ID}
;; (0-based line; column in code points, i.e. Emacs characters) and on stdin the user's answers:
;; the title of the action to pick, then "y" to eglot's edit confirmation.
;;
;; No hand-built request: the README's set-up (an `eglot-server-programs' entry for python-mode,
;; `eglot-ensure' on `python-mode-hook', `eglot-code-actions' on a key, USER-ID as the "ace"
;; section of `eglot-workspace-configuration'), FILE opened, point put
;; at LINE:CHARACTER, and the key's command run the way the command loop runs it. eglot 1.9 then
;; asks ACE for the code actions of the sexp at point, with only its own server's diagnostics
;; in the context (none: ACE publishes none), offers them in `completing-read', runs the picked
;; one (`workspace/executeCommand'), and applies ACE's `workspace/applyEdit' after its
;; confirmation prompt. The script saves FILE and exits 0; any failure exits 3 (see emacs_lib.el).

(load (expand-file-name "emacs_lib" (file-name-directory load-file-name)) nil t)

;; The README's set-up, with the test's command in place of ("ace" "serve").
(with-eval-after-load 'eglot
  (add-to-list 'eglot-server-programs (cons 'python-mode (plist-get ace-test-args :cmd))))
(add-hook 'python-mode-hook #'eglot-ensure)
;; Settings, answered to ACE's `workspace/configuration' (section "ace").
(setq-default eglot-workspace-configuration
              `(:ace (:userId ,(plist-get ace-test-args :user) :riskLevel "balanced")))
(with-eval-after-load 'eglot
  (define-key eglot-mode-map (kbd "C-c a") #'eglot-code-actions))

;; The README's optional mode-line hook: keep the server's `ace/budget' notification.
(defvar ace-budget nil "The last `ace/budget' from ACE: (:tier :user :spentToday :dailyLimit ...).")
(cl-defmethod eglot-handle-notification (_server (_method (eql ace/budget)) &rest budget)
  (setq ace-budget budget))

(defvar ace-test--offered nil "The titles of the actions eglot offered.")

(advice-add 'eglot--read-execute-code-action :before
            (lambda (actions &rest _)
              (setq ace-test--offered (mapcar (lambda (a) (plist-get a :title)) actions))
              (ace-test--log "eglot offers %S" ace-test--offered)))

(defun ace-test--press (keys)
  "Run the command KEYS is bound to, as the command loop does after the user types KEYS."
  (let* ((events (listify-key-sequence (kbd keys)))
         (command (key-binding (kbd keys)))
         (last-command-event (car (last events)))
         (last-nonmenu-event last-command-event)
         (this-command command))
    (unless (commandp command) (ace-test--fail "%s is not bound to a command" keys))
    (ace-test--log "%s runs %s" keys command)
    (run-hooks 'pre-command-hook)
    (prog1 (command-execute command)
      (run-hooks 'post-command-hook))))

(condition-case err
    (let ((file (plist-get ace-test-args :file))
          (jsonrpc-default-request-timeout 60))
      (find-file file)
      (unless (eq major-mode 'python-mode)
        (ace-test--fail "%s opened in %s, not python-mode" file major-mode))
      ;; `eglot-ensure' connects from `post-command-hook', after the command that opened the
      ;; file: --batch has no command loop, so end that command here.
      (run-hooks 'post-command-hook)
      (ace-test--wait "eglot-ensure to connect to the server" 30
                      (lambda () (and (eglot-current-server) eglot--managed-mode)))
      (ace-test--log "connected; codeActionProvider %S"
                     (eglot--server-capable :codeActionProvider))
      ;; Until its models are loaded ACE lists its actions without "· model · cost"; its first
      ;; `ace/budget' says they are (a user takes longer than this to press a key).
      (ace-test--wait "ACE's first ace/budget" 15 (lambda () ace-budget))
      (ace-test--log "ace/budget %S" ace-budget)
      (unless (equal (plist-get ace-budget :user) (plist-get ace-test-args :user))
        (ace-test--fail "ACE did not take userId from eglot-workspace-configuration: %S"
                        ace-budget))
      (goto-char (point-min))
      (forward-line (plist-get ace-test-args :line))
      (forward-char (plist-get ace-test-args :character))
      (ace-test--log "point at line %d, column %d, on %S" (line-number-at-pos) (current-column)
                     (thing-at-point 'sexp t))
      (let ((version eglot--versioned-identifier)
            (result (ace-test--press "C-c a")))
        (ace-test--log "the picked action answered %S" result)
        (unless (eq (plist-get result :applied) t)
          (ace-test--fail "the fix was not applied: %S" result))
        (when (= version eglot--versioned-identifier)
          (ace-test--fail "eglot did not change the buffer")))
      (save-buffer)
      (ace-test--log "saved %s" file)
      (eglot-shutdown (eglot-current-server))
      (ace-test--log "server shut down")
      (kill-emacs 0))
  (error (ace-test--fail "%s (offered: %S)" (error-message-string err) ace-test--offered)))

;;; emacs_code_actions.el ends here
