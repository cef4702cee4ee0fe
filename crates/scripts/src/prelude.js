// The Cosmos DB server-side JavaScript API, written over one host function that the engine
// installs as `__tributary_host(operation, argumentsJson) -> replyJson` (a reply is
// {"ok": result} or {"err": {"number": status, "message": text}}). Evaluated once per run,
// before the script; `__tributary_run` is what the engine calls.
(function (global) {
    "use strict";
    var host = global.__tributary_host;
    delete global.__tributary_host;

    var ErrorCodes = {
        BadRequest: 400, Forbidden: 403, NotFound: 404, Conflict: 409,
        PreconditionFailed: 412, RequestEntityTooLarge: 413, RetryWith: 449,
        InternalServerError: 500
    };

    // What one run may do and what it has done.
    var run = null;

    function fail(message) {
        throw new Error(message);
    }

    function hostCall(operation, args) {
        var reply = JSON.parse(host(operation, JSON.stringify(args)));
        if (reply.err !== undefined) {
            var error = new Error(reply.err.message);
            error.number = reply.err.number;
            error.body = JSON.stringify({ code: reply.err.number, message: reply.err.message });
            return { error: error };
        }
        return { ok: reply.ok };
    }

    var knownOptions = {
        create: ["disableAutomaticIdGeneration", "indexAction"],
        upsert: ["disableAutomaticIdGeneration", "indexAction", "etag"],
        replace: ["etag", "indexAction"],
        read: [],
        "delete": ["etag"],
        query: ["pageSize", "continuation", "enableScan", "enableLowPrecisionOrderBy"],
        readAll: ["pageSize", "continuation"]
    };

    // (options, callback) where options may be left out.
    function optionsAndCallback(operation, options, callback) {
        if (typeof options === "function" && callback === undefined) {
            callback = options;
            options = undefined;
        }
        if (options === undefined || options === null) {
            options = {};
        }
        if (typeof options !== "object") {
            fail("the options of " + operation + " must be an object");
        }
        if (callback !== undefined && callback !== null && typeof callback !== "function") {
            fail("the callback of " + operation + " must be a function");
        }
        Object.keys(options).forEach(function (name) {
            if (knownOptions[operation].indexOf(name) < 0) {
                fail("option '" + name + "' is not supported by " + operation + " (supported: " +
                    knownOptions[operation].join(", ") + ")");
            }
        });
        return { options: options, callback: callback || undefined };
    }

    // Runs an operation now and queues its callback, as Cosmos DB completes operations
    // asynchronously. An error with no callback to take it aborts the script.
    function operation(name, args, options, callback, page) {
        var call = optionsAndCallback(name, options, callback);
        args.options = call.options;
        var reply = hostCall(name, args);
        var responseOptions = {};
        var result = reply.ok;
        if (reply.error === undefined && page) {
            var paged = page(result, call.options);
            result = paged.results;
            responseOptions = paged.responseOptions;
        }
        run.pending.push(function () {
            if (reply.error !== undefined) {
                if (call.callback === undefined) {
                    throw reply.error;
                }
                call.callback(reply.error, undefined, responseOptions);
            } else if (call.callback !== undefined) {
                call.callback(undefined, result, responseOptions);
            }
        });
        return true;
    }

    // A page of a feed: `pageSize` results from the offset the continuation names.
    function feedPage(results, options) {
        var start = 0;
        if (options.continuation !== undefined && options.continuation !== null) {
            start = Number(options.continuation);
            if (!(start >= 0 && start <= results.length && Math.floor(start) === start)) {
                fail("'" + options.continuation + "' is not a continuation of this feed");
            }
        }
        var size = options.pageSize === undefined || options.pageSize < 0
            ? results.length : options.pageSize;
        var end = Math.min(results.length, start + size);
        var responseOptions = {};
        if (end < results.length) {
            responseOptions.continuation = String(end);
        }
        return { results: results.slice(start, end), responseOptions: responseOptions };
    }

    function notSupported(name) {
        return function () {
            fail(name + " is not supported: query with queryDocuments and SQL instead");
        };
    }

    var collection = {
        getSelfLink: function () { return run.selfLink; },
        getAltLink: function () { return run.altLink; },
        createDocument: function (link, document, options, callback) {
            return operation("create", { link: link, document: document }, options, callback);
        },
        upsertDocument: function (link, document, options, callback) {
            return operation("upsert", { link: link, document: document }, options, callback);
        },
        replaceDocument: function (link, document, options, callback) {
            return operation("replace", { link: link, document: document }, options, callback);
        },
        readDocument: function (link, options, callback) {
            return operation("read", { link: link }, options, callback);
        },
        deleteDocument: function (link, options, callback) {
            return operation("delete", { link: link }, options, callback);
        },
        queryDocuments: function (link, query, options, callback) {
            if (typeof query !== "string" && (query === null || typeof query !== "object")) {
                fail("queryDocuments takes a SQL string or {query, parameters}");
            }
            return operation("query", { link: link, query: query }, options, callback, feedPage);
        },
        readDocuments: function (link, options, callback) {
            return operation("readAll", { link: link }, options, callback, feedPage);
        }
    };
    ["chain", "filter", "map", "pluck", "flatten", "sortBy", "sortByDescending", "value"]
        .forEach(function (name) { collection[name] = notSupported("__." + name); });
    ["createAttachment", "readAttachment", "replaceAttachment", "deleteAttachment",
        "upsertAttachment", "queryAttachments", "readAttachments"]
        .forEach(function (name) {
            collection[name] = function () { fail(name + ": attachments are not supported"); };
        });
    collection.ErrorCodes = ErrorCodes;

    // Only the `Body` value exists; the others Cosmos DB names are not kept.
    function bodyKey(key) {
        if (key !== "Body") {
            fail("value '" + key + "' is not supported: only 'Body' is");
        }
    }

    var request = {
        getBody: function () { return run.requestBody; },
        setBody: function (body) {
            if (run.kind !== "pre") {
                fail("only a pre-trigger may change the request's body");
            }
            run.requestBody = body;
        },
        getValue: function (key) { bodyKey(key); return run.requestBody; },
        setValue: function (key, value) { bodyKey(key); request.setBody(value); },
        getOperationType: function () { return run.operationType; }
    };

    var response = {
        getBody: function () { return run.responseBody; },
        setBody: function (body) {
            if (run.kind !== "sproc") {
                fail("only a stored procedure may set the response's body");
            }
            run.responseBody = body;
        },
        appendBody: function (text) {
            response.setBody((run.responseBody === undefined ? "" : String(run.responseBody)) +
                String(text));
        },
        getValue: function (key) { bodyKey(key); return run.responseBody; },
        setValue: function (key, value) { bodyKey(key); response.setBody(value); },
        appendValue: function (key, value) { bodyKey(key); response.appendBody(value); }
    };

    var context = {
        getCollection: function () { return collection; },
        getRequest: function () { return request; },
        getResponse: function () {
            if (run.kind === "pre") {
                fail("a pre-trigger has no response yet");
            }
            return response;
        }
    };

    function getContext() {
        if (run === null || run.kind === "udf") {
            fail("getContext() is available to stored procedures and triggers only");
        }
        return context;
    }

    function format(args) {
        var values = Array.prototype.slice.call(args);
        var text = String(values.length > 0 ? values.shift() : "");
        text = text.replace(/%[sdifjo%]/g, function (directive) {
            if (directive === "%%") {
                return "%";
            }
            if (values.length === 0) {
                return directive;
            }
            var value = values.shift();
            switch (directive) {
                case "%d": case "%i": return String(parseInt(value, 10));
                case "%f": return String(parseFloat(value));
                case "%j": case "%o": return JSON.stringify(value);
                default: return String(value);
            }
        });
        values.forEach(function (value) {
            text += " " + (typeof value === "object" ? JSON.stringify(value) : String(value));
        });
        return text;
    }

    Object.defineProperty(global, "getContext", { value: getContext });
    Object.defineProperty(global, "__", {
        get: function () { return getContext().getCollection(); }
    });
    Object.defineProperty(global, "console", {
        value: { log: function () { run.log.push(format(arguments)); } }
    });

    // The script's function, from its source text.
    function compile(source) {
        var fn;
        try {
            fn = (0, eval)("(" + source + "\n)");
        } catch (error) {
            if (error instanceof SyntaxError) {
                fail("the script's body must be a JavaScript function: " + error.message);
            }
            throw error;
        }
        if (typeof fn !== "function") {
            fail("the script's body must be a JavaScript function");
        }
        return fn;
    }

    var udfs = {};
    Object.defineProperty(global, "__tributary_define_udf", {
        value: function (name, source) { udfs[name] = compile(source); }
    });
    Object.defineProperty(global, "__tributary_call_udf", {
        value: function (name, argumentsJson) {
            run = { kind: "udf", log: [], pending: [] };
            var result = udfs[name].apply(undefined, JSON.parse(argumentsJson));
            return result === undefined ? undefined : JSON.stringify(result);
        }
    });

    // Runs a stored procedure ("sproc") or a trigger ("pre", "post") and returns
    // {"body", "request", "log"} as JSON.
    Object.defineProperty(global, "__tributary_run", {
        value: function (kind, source, inputJson) {
            var input = JSON.parse(inputJson);
            run = {
                kind: kind,
                selfLink: input.selfLink,
                altLink: input.altLink,
                operationType: input.operationType,
                requestBody: input.request,
                responseBody: input.response,
                log: [],
                pending: []
            };
            var fn = compile(source);
            fn.apply(undefined, kind === "sproc" ? input.request : []);
            while (run.pending.length > 0) {
                run.pending.shift()();
            }
            return JSON.stringify({
                body: run.responseBody,
                request: run.requestBody,
                log: run.log.join("\n")
            });
        }
    });
})(globalThis);
