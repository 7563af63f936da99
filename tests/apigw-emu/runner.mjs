// runner.mjs: runs one Lambda invocation in a child process of the
// emulator (lambda.mjs forks it per Invoke).  It receives over IPC
// { file, event, context }, writes the function's console output to
// stdout in the Lambda Node.js runtime's format
// ("<ISO time>\t<request id>\t<LEVEL>\t<message>"), and answers
// { ok: true, result: <JSON text> } or { ok: false, error: {errorType,
// errorMessage, trace} } before exiting.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

function errorPayload(e) {
	if (e instanceof Error) {
		return {
			errorType: e.name || 'Error',
			errorMessage: e.message,
			trace: String(e.stack || '').split('\n'),
		};
	}
	return { errorType: typeof e, errorMessage: String(e), trace: [] };
}

process.once('message', async ({ file, event, context: c }) => {
	const reqId = c.awsRequestId;
	const log = (level) => (...args) => {
		process.stdout.write(`${new Date().toISOString()}\t${reqId}\t${level}\t${format(...args)}\n`);
	};
	console.log = log('INFO');
	console.info = log('INFO');
	console.warn = log('WARN');
	console.error = log('ERROR');
	console.debug = log('DEBUG');
	console.trace = log('TRACE');

	const context = {
		functionName: c.functionName,
		functionVersion: '$LATEST',
		invokedFunctionArn: c.invokedFunctionArn,
		memoryLimitInMB: String(c.memoryLimitInMB),
		awsRequestId: reqId,
		logGroupName: `/aws/lambda/${c.functionName}`,
		logStreamName: c.logStreamName,
		callbackWaitsForEmptyEventLoop: true,
		getRemainingTimeInMillis: () => Math.max(0, c.deadline - Date.now()),
	};

	const finish = (msg) => {
		if (!msg.ok) {
			const { errorType, errorMessage, trace } = msg.error;
			log('ERROR')(`Invoke Error \t${JSON.stringify({ errorType, errorMessage, stack: trace })}`);
		}
		process.send(msg, () => process.exit(0));
	};

	let handler;
	try {
		if (!existsSync(file)) {
			const err = new Error(`Cannot find module '${c.functionName}'\nRequire stack:\n- /var/runtime/index.mjs`);
			err.name = 'Runtime.ImportModuleError';
			throw err;
		}
		const mod = await import(pathToFileURL(file).href);
		handler = mod.handler;
		if (typeof handler !== 'function') {
			const err = new Error(`${c.functionName}.handler is undefined or not exported`);
			err.name = 'Runtime.HandlerNotFound';
			throw err;
		}
	} catch (e) {
		const p = errorPayload(e);
		if (!p.errorType.startsWith('Runtime.')) {
			p.errorType = 'Runtime.ImportModuleError';
		}
		finish({ ok: false, error: p });
		return;
	}
	try {
		let result;
		if (handler.length >= 3) {
			result = await new Promise((resolve, reject) => {
				const r = handler(event, context, (err, value) => (err ? reject(err) : resolve(value)));
				if (r && typeof r.then === 'function') {
					r.then(resolve, reject);
				}
			});
		} else {
			result = await handler(event, context);
		}
		const text = JSON.stringify(result === undefined ? null : result);
		finish({ ok: true, result: text === undefined ? 'null' : text });
	} catch (e) {
		finish({ ok: false, error: errorPayload(e) });
	}
});
