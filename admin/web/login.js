// The login page: carries ?next= into the form and shows ?error=1.
"use strict";
(function () {
  const q = new URLSearchParams(location.search);
  const next = q.get("next");
  if (next && next.startsWith("/") && !next.startsWith("//")) document.getElementById("next").value = next;
  if (q.get("error")) document.getElementById("login-error").hidden = false;
})();
