// piperun pages: the detail page's actions and live updates. Everything
// the server sends is put in the page with textContent, never as HTML.
(function () {
  'use strict';

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : '';

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // api calls the JSON API with the session cookie; state changes carry
  // the session's CSRF token. It resolves to the decoded body and rejects
  // with the server's error message.
  function api(method, url, body) {
    var opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
        if (!res.ok) {
          var err = new Error((data && data.error) || (res.status + ' ' + res.statusText));
          err.status = res.status;
          throw err;
        }
        return data;
      });
    });
  }

  // notify shows a notification; errors stay until closed.
  function notify(kind, message) {
    var box = $('notices');
    if (!box) return;
    var n = el('div', 'notice ' + kind);
    n.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    n.appendChild(el('span', 'text', message));
    var close = el('button', '', '×');
    close.type = 'button';
    close.setAttribute('aria-label', 'Dismiss');
    close.addEventListener('click', function () { n.remove(); });
    n.appendChild(close);
    box.appendChild(n);
    if (kind !== 'error') setTimeout(function () { n.remove(); }, 10000);
  }

  function fmtTime(iso) {
    if (!iso || iso.indexOf('0001-01-01') === 0) return '—';
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  }

  function fixed(v, n) { return (typeof v === 'number') ? v.toFixed(n) : ''; }

  function humanSize(n) {
    if (n < 1024) return n + ' B';
    var units = 'KMGTPE', i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1) + ' ' + units[i] + 'iB';
  }

  var busyStatuses = { Queued: true, Running: true, Restoring: true, Deleting: true };

  function initRun() {
    var root = $('run');
    var name = root.dataset.run;
    var mayChange = root.dataset.mayChange === 'true';
    var runURL = '/api/v1/runs/' + encodeURIComponent(name);
    var run = JSON.parse($('run-data').textContent);
    var openLog = null;   // name of the log shown in the viewer
    var nextLine = 1;     // next line number of the open log
    var editing = false;
    var source = null;
    var live = null;      // the run as the live stream last showed it

    function setStatus(status) {
      var b = $('run-status');
      b.textContent = status;
      b.className = 'badge status-' + String(status).toLowerCase();
      var busy = !!busyStatuses[status];
      if (mayChange) {
        var p = $('process-button');
        p.disabled = busy;
        p.textContent = status === 'Initialised' ? 'Process Run' : 'Add Images or Re-Process Run';
        $('process-title').textContent = p.textContent;
        $('delete-button').disabled = status === 'Deleting';
        $('config-edit-button').disabled = busy;
        $('restore-button').hidden = !(run.restore_available && !busy);
        $('cancel-button').hidden = !(status === 'Queued' || status === 'Running');
      }
    }

    // render shows a run; parts, if given, says which of its lists
    // changed (the others are left as they are).
    function render(d, parts) {
      run = d;
      setStatus(d.status);
      $('run-version').textContent = d.version;
      $('run-updated').textContent = fmtTime(d.updated);
      $('run-updated').setAttribute('datetime', d.updated || '');
      $('run-description').textContent = d.description || '';
      document.querySelectorAll('[data-fig]').forEach(function (f) {
        var v = d[f.dataset.fig];
        f.textContent = (v === undefined || v === null) ? '0' : v;
      });
      if (!editing) $('config-view').textContent = d.config || '';
      if (!parts || parts.logs) renderLogs(d.logs || []);
      if (!parts || parts.images) renderImages(d.images || []);
      if (!parts || parts.products) renderProducts(d.products || []);
    }

    // applyChange applies a "change" event of the live stream to the run
    // the stream sent before (live): plain fields are replaced, and each
    // list that changed comes as one splice.
    function applyChange(c) {
      if (!live) return;
      live.version = c.version;
      live.updated = c.updated;
      var fields = c.fields || {};
      Object.keys(fields).forEach(function (k) { live[k] = fields[k]; });
      var parts = {};
      ['images', 'products', 'logs'].forEach(function (k) {
        var s = c[k];
        if (!s) return;
        var list = live[k] || [];
        live[k] = list.slice(0, s.at).concat(s.insert || [], list.slice(s.at + s.remove));
        parts[k] = true;
      });
      render(live, parts);
    }

    function renderLogs(logs) {
      var list = $('log-list');
      list.textContent = '';
      if (!logs.length) {
        list.appendChild(el('li', 'muted empty-logs', 'No logs yet: they appear when the run is processed or restored.'));
        return;
      }
      logs.forEach(function (l) {
        var li = el('li');
        var b = el('button', 'log-link', l.name);
        b.type = 'button';
        b.dataset.log = l.name;
        if (l.name === openLog) b.setAttribute('aria-current', 'true');
        li.appendChild(b);
        li.appendChild(document.createTextNode(' '));
        li.appendChild(el('span', 'tag kind-' + l.kind, l.kind));
        list.appendChild(li);
      });
    }

    function renderImages(images) {
      var tbody = $('images-table').tBodies[0];
      tbody.textContent = '';
      if (!images.length) {
        var tr = el('tr', 'empty-row');
        var td = el('td', 'muted', 'No processed images yet.');
        td.colSpan = 8;
        tr.appendChild(td);
        tbody.appendChild(tr);
        return;
      }
      images.forEach(function (im) {
        var tr = el('tr');
        var first = el('td', '', im.name);
        first.title = im.path || '';
        tr.appendChild(first);
        tr.appendChild(el('td', '', im.epoch || ''));
        tr.appendChild(el('td', '', fmtTime(im.datetime)));
        tr.appendChild(el('td', 'num', fixed(im.frequency_mhz, 1)));
        tr.appendChild(el('td', 'num', fixed(im.beam_bmaj * 3600, 1) + '″ × ' + fixed(im.beam_bmin * 3600, 1) + '″, ' + fixed(im.beam_bpa, 1) + '°'));
        tr.appendChild(el('td', 'num', fixed(im.ra, 5)));
        tr.appendChild(el('td', 'num', fixed(im.dec, 5)));
        tr.appendChild(el('td', 'num', im.n_meas));
        tbody.appendChild(tr);
      });
    }

    function renderProducts(products) {
      $('products-count').textContent = '(' + products.length + ')';
      var tbody = $('products-table').tBodies[0];
      tbody.textContent = '';
      products.forEach(function (p) {
        var tr = el('tr');
        tr.appendChild(el('td', '', p.name));
        tr.appendChild(el('td', 'num', humanSize(p.size)));
        var td = el('td');
        td.appendChild(el('code', '', String(p.digest || '').replace(/^sha256:/, '').slice(0, 12)));
        tr.appendChild(td);
        tbody.appendChild(tr);
      });
    }

    // Live updates.
    function connect() {
      if (source) source.close();
      var url = '/runs/' + encodeURIComponent(name) + '/events/stream';
      if (openLog) url += '?log=' + encodeURIComponent(openLog) + '&from=' + nextLine;
      source = new EventSource(url);
      source.addEventListener('open', function () {
        var l = $('live');
        l.classList.remove('unavailable');
        l.textContent = 'live';
        l.title = 'Following the run live';
        l.classList.add('on');
      });
      source.addEventListener('error', function () {
        var l = $('live');
        l.classList.remove('on');
        // A refused stream (too many open, session ended) is closed for
        // good; a dropped one reconnects by itself.
        if (source.readyState === EventSource.CLOSED) {
          l.textContent = 'live updates unavailable, refresh to update';
          l.title = 'The server did not accept a live stream for this page (too many open, or the session ended).';
          l.classList.add('unavailable');
        }
      });
      source.addEventListener('run', function (e) {
        live = JSON.parse(e.data);
        render(live);
      });
      source.addEventListener('change', function (e) { applyChange(JSON.parse(e.data)); });
      source.addEventListener('log', function (e) { appendLog(JSON.parse(e.data)); });
      source.addEventListener('gone', function () {
        source.close();
        $('live').classList.remove('on');
        setStatus('Deleted');
        notify('ok', 'The run ' + name + ' was deleted.');
        setTimeout(function () { window.location.assign('/'); }, 1500);
      });
    }

    // Log viewer.
    function lineNode(line) {
      var m = /^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) /.exec(line);
      return el('span', m ? 'l-' + m[1] : '', line + '\n');
    }

    function appendLog(batch) {
      if (batch.log !== openLog) return;
      var lines = batch.lines || [];
      // Skip what the viewer has (a reconnect may resend), and refetch on a gap.
      if (batch.from > nextLine) { showLog(openLog); return; }
      lines = lines.slice(nextLine - batch.from);
      if (!lines.length) return;
      var pre = $('log-text');
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      var frag = document.createDocumentFragment();
      lines.forEach(function (l) { frag.appendChild(lineNode(l)); });
      pre.appendChild(frag);
      nextLine += lines.length;
      $('log-count').textContent = (nextLine - 1) + ' lines';
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }

    function showLog(logName) {
      openLog = logName;
      nextLine = 1;
      $('log-viewer').hidden = false;
      $('log-title').textContent = logName;
      $('log-text').textContent = '';
      $('log-count').textContent = 'loading…';
      renderLogs(run.logs || []);
      return fetch(runURL + '/logs/' + encodeURIComponent(logName), { credentials: 'same-origin' }).then(function (res) {
        return res.text().then(function (text) {
          if (!res.ok) {
            var msg = text;
            try { msg = JSON.parse(text).error; } catch (e) { /* plain text */ }
            throw new Error(msg);
          }
          return text;
        });
      }).then(function (text) {
        if (openLog !== logName) return;
        var lines = text ? text.replace(/\n$/, '').split('\n') : [];
        appendLog({ log: logName, from: 1, lines: lines });
        $('log-count').textContent = (nextLine - 1) + ' lines';
        connect();
      }).catch(function (err) {
        $('log-count').textContent = '';
        notify('error', 'Could not open the log ' + logName + ': ' + err.message);
      });
    }

    $('log-list').addEventListener('click', function (e) {
      var b = e.target.closest('.log-link');
      if (b) {
        showLog(b.dataset.log).then(function () {
          $('log-viewer').scrollIntoView({ behavior: 'smooth', block: 'start' });
        });
      }
    });
    $('log-close').addEventListener('click', function () {
      openLog = null;
      $('log-viewer').hidden = true;
      renderLogs(run.logs || []);
      connect();
    });

    connect();
    if (!mayChange) return;

    // Modals.
    document.querySelectorAll('dialog [data-close]').forEach(function (b) {
      b.addEventListener('click', function () { b.closest('dialog').close(); });
    });

    // After a request was accepted, show its outcome at once (the live
    // stream follows with the rest) and open its log.
    function accepted(res) {
      if (res && res.status) {
        run.status = res.status;
        setStatus(res.status);
      }
      if (res && res.log) showLog(res.log);
    }

    $('process-button').addEventListener('click', function () {
      $('process-debug').checked = false;
      $('process-full').checked = false;
      $('process-dialog').showModal();
    });
    $('schedule-run').addEventListener('click', function () {
      var btn = this;
      btn.disabled = true;
      api('POST', runURL + '/process', { debug: $('process-debug').checked, full_rerun: $('process-full').checked })
        .then(function (res) {
          $('process-dialog').close();
          notify('ok', 'Run scheduled' + (res.mode ? ' (' + (res.mode === 'add' ? 'adding images' : 'full run') + ')' : '') + '. The run is ' + res.status + '.');
          accepted(res);
        })
        .catch(function (err) {
          $('process-dialog').close();
          notify('error', 'The run was not scheduled: ' + err.message);
        })
        .finally(function () { btn.disabled = false; });
    });

    $('restore-button').addEventListener('click', function () {
      var cfg = $('restore-config'), submit = $('restore-submit'), why = $('restore-unavailable');
      cfg.textContent = 'Loading…';
      $('restore-images').textContent = '';
      why.hidden = true;
      submit.disabled = true;
      $('restore-debug').checked = false;
      $('restore-dialog').showModal();
      api('GET', runURL + '/restore').then(function (p) {
        cfg.textContent = p.config || '(no previous successful configuration)';
        if (p.images && p.images.length) {
          var after = 'After the restore: ' + p.images.length + ' images (' +
            p.images.map(function (s) { return s.split('/').pop(); }).join(', ') + ')';
          if (p.figures) {
            after += ', ' + p.figures.n_sources + ' sources, ' + p.figures.n_selavy_measurements + ' selavy measurements';
          }
          $('restore-images').textContent = after + '.';
        }
        var reason = !p.available ? p.reason : (!p.allowed ? 'Only the run\'s creator or an administrator may restore it.' : '');
        if (reason) {
          why.textContent = reason;
          why.hidden = false;
        }
        submit.disabled = !!reason;
      }).catch(function (err) {
        cfg.textContent = '';
        why.textContent = 'The previous configuration could not be loaded: ' + err.message;
        why.hidden = false;
      });
    });
    $('restore-submit').addEventListener('click', function () {
      var btn = this;
      btn.disabled = true;
      api('POST', runURL + '/restore', { debug: $('restore-debug').checked })
        .then(function (res) {
          $('restore-dialog').close();
          notify('ok', 'Restore request accepted: the run is ' + res.status + '.');
          accepted(res);
        })
        .catch(function (err) {
          $('restore-dialog').close();
          notify('error', 'Restore request refused: ' + err.message);
        })
        .finally(function () { btn.disabled = false; });
    });

    $('cancel-button').addEventListener('click', function () { $('cancel-dialog').showModal(); });
    $('cancel-confirm').addEventListener('click', function () {
      var btn = this;
      btn.disabled = true;
      api('POST', runURL + '/cancel')
        .then(function (res) {
          $('cancel-dialog').close();
          notify('ok', 'Job cancelled: the run is ' + res.status + '.');
          accepted(res);
        })
        .catch(function (err) {
          $('cancel-dialog').close();
          notify('error', 'The job was not cancelled: ' + err.message);
        })
        .finally(function () { btn.disabled = false; });
    });

    $('delete-button').addEventListener('click', function () { $('delete-dialog').showModal(); });
    $('delete-confirm').addEventListener('click', function () {
      var btn = this;
      btn.disabled = true;
      api('DELETE', runURL)
        .then(function (res) {
          $('delete-dialog').close();
          notify('ok', 'Deletion requested: the run is ' + res.status + '.');
          accepted(res);
        })
        .catch(function (err) {
          $('delete-dialog').close();
          notify('error', 'The run was not deleted: ' + err.message);
        })
        .finally(function () { btn.disabled = false; });
    });

    // Configuration: edit, validate (problems beside the editor), save.
    var form = $('config-form'), text = $('config-text'), problems = $('config-problems');

    function showProblems(list, okText) {
      problems.textContent = '';
      problems.hidden = false;
      problems.className = 'problems' + (list.length ? '' : ' ok');
      problems.appendChild(el('h3', '', list.length ? 'Problems' : 'Valid'));
      if (list.length) {
        var ul = el('ul');
        list.forEach(function (p) {
          var li = el('li');
          if (p.line) { li.appendChild(el('span', 'line', 'line ' + p.line)); li.appendChild(document.createTextNode(' ')); }
          if (p.field) { li.appendChild(el('code', '', p.field)); li.appendChild(document.createTextNode(': ')); }
          li.appendChild(document.createTextNode(p.message));
          ul.appendChild(li);
        });
        problems.appendChild(ul);
        text.setAttribute('aria-invalid', 'true');
      } else {
        problems.appendChild(el('p', '', okText || 'The configuration is valid.'));
        text.removeAttribute('aria-invalid');
      }
    }

    $('config-edit-button').addEventListener('click', function () {
      editing = true;
      text.value = run.config || '';
      problems.hidden = true;
      form.hidden = false;
      $('config-card').classList.add('editing');
      $('config-view').hidden = true;
      this.hidden = true;
      text.focus();
    });
    function stopEditing() {
      editing = false;
      form.hidden = true;
      $('config-card').classList.remove('editing');
      $('config-view').hidden = false;
      $('config-view').textContent = run.config || '';
      $('config-edit-button').hidden = false;
    }
    $('config-cancel').addEventListener('click', stopEditing);
    function validate() {
      return api('POST', '/runs/' + encodeURIComponent(name) + '/config/validate', { config: text.value })
        .then(function (res) { showProblems(res.problems || [], res.plan); return res; })
        .catch(function (err) { showProblems([{ message: err.message }]); });
    }
    $('config-validate').addEventListener('click', validate);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      api('PUT', runURL + '/config', { config: text.value })
        .then(function (d) {
          stopEditing();
          render(d);
          notify('ok', 'Configuration saved.');
        })
        .catch(function (err) {
          // A refused configuration: list its problems one by one.
          var shown = err.status === 400 ? validate() : Promise.resolve(null);
          shown.then(function (res) {
            if (!res || res.valid) showProblems([{ message: err.message }]);
          });
        });
    });
  }

  // initRuns makes the "New run" link open the form.
  function initRuns() {
    var details = document.querySelector('#new-run details');
    function open() {
      details.open = true;
      $('run-name').focus();
    }
    $('new-run-link').addEventListener('click', function (e) {
      e.preventDefault();
      open();
      $('new-run').scrollIntoView({ block: 'start' });
    });
    if (window.location.hash === '#new-run') open();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var page = document.body.dataset.page;
    if (page === 'run') initRun();
    if (page === 'runs') initRuns();
  });
})();
