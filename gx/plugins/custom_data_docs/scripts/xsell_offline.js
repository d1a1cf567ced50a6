// xsell: what the Data Docs pages need from a script, without jQuery or Bootstrap (which
// GE loads from CDNs and the offline pages do not; xsell/quality/docs_offline.py inlines
// this file in every page). Two things: blocks that open and close ("Show more info..."),
// and the "Show All" / "Failed Only" filter of a validation result page.
(function () {
  "use strict";

  function targetOf(link) {
    var selector = link.getAttribute("data-target") || link.getAttribute("href") || "";
    if (selector.charAt(0) !== "#") {
      return null;
    }
    return document.getElementById(decodeURIComponent(selector.slice(1)));
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest('[data-toggle="collapse"]') : null;
    var block = link && targetOf(link);
    if (!block) {
      return;
    }
    event.preventDefault();
    var open = block.classList.toggle("show");
    link.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // The rows and sections GE marks as succeeded, and the table-of-contents links to the
  // column sections whose expectations all succeeded.
  function succeeded() {
    var found = [];
    document.querySelectorAll(".hide-succeeded-validation-target").forEach(function (el) {
      found.push(el);
    });
    document.querySelectorAll(".hide-succeeded-validation-target-child").forEach(function (el) {
      if (el.parentElement) {
        found.push(el.parentElement);
      }
    });
    document.querySelectorAll(".hide-succeeded-validations-column-section-target-child")
      .forEach(function (el) {
        var section = el.parentElement && el.parentElement.parentElement;
        if (!section) {
          return;
        }
        found.push(section);
        if (section.id) {
          document.querySelectorAll("a[href]").forEach(function (a) {
            if (a.getAttribute("href") === "#" + section.id) {
              found.push(a);
            }
          });
        }
      });
    return found;
  }

  function filter(failedOnly, label) {
    succeeded().forEach(function (el) {
      el.style.display = failedOnly ? "none" : "";
    });
    if (label && label.parentElement) {
      label.parentElement.querySelectorAll("label").forEach(function (other) {
        other.classList.toggle("active", other === label);
      });
    }
  }

  // The names GE's buttons call (onclick="showAllValidations()").
  window.showAllValidations = function () {
    filter(false, window.event && window.event.currentTarget);
  };
  window.hideSucceededValidations = function () {
    filter(true, window.event && window.event.currentTarget);
  };
})();
