#!/usr/bin/env bash
# Re-create book/extra/vendor/: the JavaScript the built book needs, served from the book itself so
# that the HTML renders with no network (no CDN).
#
#   require.js                  requirejs                     (AMD loader the widget embedder needs)
#   html-manager/embed-amd.js   @jupyter-widgets/html-manager (renders the stored ipywidgets state)
#                               + the FontAwesome woff2 fonts it references (Play/Button icons)
#   mathjax/tex-chtml.js        mathjax 3                     (+ CHTML woff-v2 fonts, TeX extensions)
#
# The vendored files are committed: `make book` needs neither npm nor the network. Run this script only
# to change a version (it needs npm and the npm registry). Versions are exact; html-manager 1.0.x is
# the embedder of ipywidgets 8.1.x (requirements.txt pins ipywidgets==8.1.9).
# _config.yml points myst-nb's `nb_ipywidgets_js` and Sphinx's `mathjax_path` at these files, and
# copies book/extra/ into the HTML root with `html_extra_path` (NOT html_static_path: Sphinx/the theme
# would load every script of _static on every page, which rendered each widget three times).
set -euo pipefail

HTML_MANAGER_VERSION=1.0.15
REQUIREJS_VERSION=2.3.8
MATHJAX_VERSION=3.2.2

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/book/extra/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" "requirejs@$REQUIREJS_VERSION" \
    "mathjax@$MATHJAX_VERSION" >/dev/null
for pkg in jupyter-widgets-html-manager-$HTML_MANAGER_VERSION requirejs-$REQUIREJS_VERSION mathjax-$MATHJAX_VERSION; do
    mkdir "$pkg" && tar xzf "$pkg.tgz" -C "$pkg" --strip-components=1
done

rm -rf "$dest"
mkdir -p "$dest/requirejs" "$dest/html-manager" "$dest/mathjax"

# package.json of each package is kept as provenance (version, licence: requirejs MIT,
# html-manager BSD-3-Clause, mathjax Apache-2.0).
# requirejs: the loader only (not r.js, the optimiser); its licence header is in require.js
cp "requirejs-$REQUIREJS_VERSION/require.js" "requirejs-$REQUIREJS_VERSION/package.json" "$dest/requirejs/"

# html-manager: embed-amd.js defines @jupyter-widgets/{base,controls,output,html-manager} itself; the
# only other files it loads are FontAwesome fonts (see local-paths.js below). Browsers take the
# first format of each @font-face that they support, woff2, so the eot/ttf/svg/woff fallbacks are left out.
hm="jupyter-widgets-html-manager-$HTML_MANAGER_VERSION"
cp "$hm/dist/embed-amd.js" "$hm/dist/embed.js.LICENSE.txt" "$hm/package.json" "$dest/html-manager/"
cp "$hm"/dist/*.woff2 "$dest/html-manager/"
# embed-amd.js computes the URL of those fonts from the AMD module ids of its bundles
# ("@jupyter-widgets/html-manager", ".../dist/libembed-amd"), which RequireJS maps to
# "<page dir>/@jupyter-widgets/...": a folder that does not exist. This small script of ours, loaded
# after require.js and before embed-amd.js (_config.yml), maps both ids to the folder it is served
# from, so the fonts load from vendor/html-manager/ (checked with headless chromium: no 404).
cat > "$dest/html-manager/local-paths.js" <<'JS'
// ssmlib (scripts/vendor_assets.sh): make @jupyter-widgets/html-manager's embed-amd.js, loaded next,
// find its fonts in this folder. Its bundles take their asset URL from their AMD module ids, which
// RequireJS resolves against the page ("<page dir>/@jupyter-widgets/..."); map them here instead.
(function () {
  var here = document.currentScript.src.replace(/[^/]*([?#].*)?$/, "");
  window.__jupyter_widgets_assets_path__ = here;
  window.requirejs.config({
    paths: {
      "@jupyter-widgets/html-manager/dist": here.replace(/\/$/, ""),
      "@jupyter-widgets/html-manager": here + "embed-amd"
    }
  });
})();
// ipywidgets' controls typeset the label of a widget with MathJax 2's API whenever window.MathJax
// exists: MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]). The book loads MathJax 3, which has
// no Hub, so every page with a labelled widget threw "Cannot read properties of undefined (reading
// 'Queue')". Give whatever object window.MathJax holds (MathJax 3 replaces it while it starts) a Hub
// whose Queue asks MathJax 3 to typeset that element.
(function () {
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i], mj = window.MathJax;
        if (Array.isArray(job) && job[0] === "Typeset" && job[2] && mj && mj.typesetPromise) {
          mj.typesetPromise([job[2]]).catch(function () {});
        }
      }
    }
  };
  function withHub(mj) {
    if (mj && typeof mj === "object" && !("Hub" in mj)) {
      Object.defineProperty(mj, "Hub", {value: hub, enumerable: false, configurable: true, writable: true});
    }
    return mj;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); }
  });
})();
// The book theme draws FontAwesome icons with JavaScript that, by default, replaces every
// <i class="fa ..."> with an <svg>. ipywidgets' Play button later looks up its <i> to switch the
// play/pause icon, found none ("Cannot set properties of undefined (setting 'className')") and
// never started playing. "nest" puts each <svg> inside its <i> instead, which the widgets keep finding.
window.FontAwesomeConfig = Object.assign({}, window.FontAwesomeConfig, {autoReplaceSvg: "nest"});
// A nested icon does not follow when a widget changes the class of its <i> (Play <-> Pause): redraw it.
document.addEventListener("DOMContentLoaded", function () {
  new MutationObserver(function (records) {
    records.forEach(function (r) {
      var el = r.target;
      if (el.tagName === "I" && el.hasAttribute("data-fa-i2svg") && /\bfa-/.test(el.className) &&
          window.FontAwesome) {
        el.removeAttribute("data-fa-i2svg");  // FontAwesome skips the <i> it has already drawn
        window.FontAwesome.dom.i2svg({node: el.parentNode});
      }
    });
  }).observe(document.body, {attributes: true, attributeFilter: ["class"], subtree: true});
});
JS

# MathJax: the tex-chtml component (TeX input + CommonHTML output + menu), the fonts CHTML loads from
# [mathjax]/output/chtml/fonts/woff-v2, and the TeX extensions that `autoload` fetches on demand
# (\boldsymbol, \cancel, \color, ...). Not kept: SVG output, MathML input, the a11y explorer and the
# speech-rule engine (only loaded if a reader switches them on in the MathJax menu).
mj="mathjax-$MATHJAX_VERSION/es5"
cp "$mj/tex-chtml.js" "mathjax-$MATHJAX_VERSION/LICENSE" "mathjax-$MATHJAX_VERSION/package.json" "$dest/mathjax/"
mkdir -p "$dest/mathjax/output/chtml/fonts" "$dest/mathjax/input/tex"
cp -r "$mj/output/chtml/fonts/woff-v2" "$dest/mathjax/output/chtml/fonts/"
cp -r "$mj/input/tex/extensions" "$dest/mathjax/input/tex/"

cat > "$dest/VERSIONS.txt" <<EOF
@jupyter-widgets/html-manager $HTML_MANAGER_VERSION (npm)
requirejs $REQUIREJS_VERSION (npm)
mathjax $MATHJAX_VERSION (npm)
Fetched by scripts/vendor_assets.sh (npm pack of these exact versions).
EOF
# the two large scripts live in git gzip-compressed (book/vendor-gz/), with their sha256 in VERSIONS.txt;
# `make vendor` (run by `make book` and `make test`) unpacks them again
(cd "$root" && python3 book/vendor_gz.py --pack)

du -sh "$dest"
