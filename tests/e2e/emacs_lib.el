;;; emacs_lib.el --- shared by the emacs_*.el scripts test_emacs.py drives  -*- lexical-binding: t -*-

;; Loaded first by each script: logging on stderr with timestamps, failing (exit 3, with the tail
;; of eglot's events and stderr buffers), polling while serving process output, ACE_TEST_ARGS
;; (a JSON object) as `ace-test-args', and eglot from Debian's elpa-eglot under `emacs -Q'.

(require 'cl-lib)
(require 'package)

(defvar ace-test--t0 (float-time))

(defun ace-test--log (fmt &rest args)
  "Print FMT with ARGS on stderr, prefixed with the seconds since start."
  (message "emacs test [%6.2fs]: %s" (- (float-time) ace-test--t0) (apply #'format fmt args)))

(defun ace-test--fail (fmt &rest args)
  "Print a failure (and eglot's recent events) on stderr and exit 3."
  (dolist (buf (buffer-list))
    (when (string-match-p "\\`\\*EGLOT .*\\(events\\|stderr\\)\\*\\'" (buffer-name buf))
      (with-current-buffer buf
        (message "--- tail of %s ---\n%s\n---" (buffer-name)
                 (buffer-substring-no-properties (max (point-min) (- (point-max) 6000))
                                                 (point-max))))))
  (message "emacs test: FAILED: %s" (apply #'format fmt args))
  (kill-emacs 3))

(defun ace-test--wait (what seconds predicate)
  "Poll PREDICATE while serving process output; fail with WHAT after SECONDS."
  (let ((deadline (+ (float-time) seconds)))
    (while (not (funcall predicate))
      (when (> (float-time) deadline)
        (ace-test--fail "timed out after %ss waiting for %s" seconds what))
      (accept-process-output nil 0.02))))

(defvar ace-test-args
  (let ((raw (getenv "ACE_TEST_ARGS")))
    (unless raw (ace-test--fail "ACE_TEST_ARGS is not set"))
    (json-parse-string raw :object-type 'plist :array-type 'list)))

;; `-Q' implies --no-site-lisp, so Debian's elpa-* packages (elpa-eglot) are not on the package
;; path: add the system package directories back, then activate the packages.
(dolist (dir '("/usr/local/share/emacs/site-lisp/elpa" "/usr/share/emacs/site-lisp/elpa"))
  (when (file-directory-p dir)
    (add-to-list 'package-directory-list dir t)))
(package-initialize)
(unless (require 'eglot nil t)
  (ace-test--fail "eglot is not installed (apt-get install elpa-eglot)"))
(ace-test--log "eglot %s from %s"
               (package-version-join (package-desc-version (cadr (assq 'eglot package-alist))))
               (locate-library "eglot"))

(provide 'emacs_lib)

;;; emacs_lib.el ends here
