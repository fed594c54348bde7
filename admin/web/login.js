// The login page: carries ?next= into the form and shows ?error=1.
"use strict";
(function () {
  const q = new URLSearchParams(location.search);
  const next = q.get("next");
  // The server's SafeNext rules: a browser drops tabs and newlines and reads "\" as "/", so "/\t/evil.example"
  // would leave the site. No control character or backslash anywhere; a refused value keeps the form's "/".
  if (next && next.startsWith("/") && !next.startsWith("//") && !/[\\\x00-\x1f\x7f]/.test(next)) {
    document.getElementById("next").value = next;
  }
  if (q.get("error")) document.getElementById("login-error").hidden = false;
})();
