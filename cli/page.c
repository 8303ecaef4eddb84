// The report page: the template's markers replaced by the styles, the scripts and the data.
//
// The data goes inside a <script type="application/json"> element, where the text "</script"
// would end it: every '<' of the JSON is written \u003c, which JSON allows inside strings
// (and JSON has no '<' outside them).
#include "page.h"

#include <string.h>

extern const unsigned char llt_asset_html[], llt_asset_css[], llt_asset_js[], llt_asset_dagre[];
extern const unsigned long llt_asset_html_len, llt_asset_css_len, llt_asset_js_len, llt_asset_dagre_len;

static void write_data(FILE * f, const char * data, size_t n) {
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] != '<') continue;
        fwrite(data + from, 1, i - from, f);
        fputs("\\u003c", f);
        from = i + 1;
    }
    fwrite(data + from, 1, n - from, f);
}

bool cli_page_write(FILE * f, const char * data, size_t n) {
    const char * t = (const char *) llt_asset_html, * end = t + llt_asset_html_len;
    while (t < end) {
        const char * m = strchr(t, '@');
        if (!m || m >= end) m = end;
        fwrite(t, 1, (size_t) (m - t), f);
        if (m == end) break;
        if (strncmp(m, "@STYLE@", 7) == 0) {
            fwrite(llt_asset_css, 1, llt_asset_css_len, f);
            t = m + 7;
        } else if (strncmp(m, "@LIBS@", 6) == 0) {
            fwrite(llt_asset_dagre, 1, llt_asset_dagre_len, f);
            t = m + 6;
        } else if (strncmp(m, "@SCRIPT@", 8) == 0) {
            fwrite(llt_asset_js, 1, llt_asset_js_len, f);
            t = m + 8;
        } else if (strncmp(m, "@DATA@", 6) == 0) {
            if (data) write_data(f, data, n);
            t = m + 6;
        } else {
            fputc('@', f);
            t = m + 1;
        }
    }
    return !ferror(f);
}
