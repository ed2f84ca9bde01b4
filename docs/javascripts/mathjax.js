// MathJax configuration for pymdownx.arithmatex (generic mode), as in the Material for MkDocs docs.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    // Formulas in headings also appear in the table of contents, as raw TeX in a nav link: typeset them too.
    processHtmlClass: "arithmatex|md-ellipsis",
  },
};

// Material's instant navigation swaps pages without a reload: typeset again on every page.
document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
