// The report page (report/page.html, page.css, page.js and the bundled dagre), compiled into
// the command by report/embed.cmake; written by `lltrace report` and served by `lltrace serve`.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

// Writes the page with data (the JSON of llt_report_write_data, n bytes) inline; data NULL:
// the page fetches data.json from where it was served, again every few seconds while the
// run is being written. Returns false when writing failed.
bool cli_page_write(FILE * f, const char * data, size_t n);
