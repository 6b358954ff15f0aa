// MathJax 3 for pymdownx.arithmatex (generic mode), served from this site: the build hook
// (tools/site_hooks.py) copies assets/mathjax/ from the django-static-mathjax package.
// Fonts and everything else resolve against the script's own URL, so no other host is asked.
//
// Material's instant navigation swaps the page content without reloading scripts, so the
// math is typeset on every page change (document$), never by MathJax's own start-up pass:
// typesetting twice would clear the font cache of math already on the page and blank it.
(function () {
  var waiting = false;

  function typeset() {
    var mathjax = window.MathJax;
    if (!mathjax || !mathjax.startup || !mathjax.startup.promise) {
      waiting = true; // MathJax not started yet: its pageReady below typesets this page
      return;
    }
    mathjax.startup.promise = mathjax.startup.promise.then(function () {
      mathjax.startup.output.clearCache();
      mathjax.typesetClear();
      mathjax.texReset();
      return mathjax.typesetPromise();
    });
  }

  window.MathJax = {
    tex: {
      inlineMath: [["\\(", "\\)"]],
      displayMath: [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
    },
    options: {
      // Only what arithmatex marked is math; a "$" in prose or code stays a dollar sign.
      ignoreHtmlClass: ".*|",
      processHtmlClass: "arithmatex",
    },
    startup: {
      typeset: false,
      pageReady: function () {
        return window.MathJax.startup.defaultPageReady().then(function () {
          if (waiting) {
            waiting = false;
            return window.MathJax.typesetPromise();
          }
        });
      },
    },
  };

  document$.subscribe(typeset);
})();
