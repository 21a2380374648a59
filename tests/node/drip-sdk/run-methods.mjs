// Calls every API method of the published @drip-sdk/node (0.1.2) `Drip` class against a Drip-compatible
// server (the drip-mcp sandbox), the way a user would, and prints one JSON line per method on stdout:
//   {"method": "createCustomer", "ok": true, "error": ""}
// One method's failure never stops the run; every call is bounded (per-method and overall deadlines).
//
// Usage:
//   node run-methods.mjs --base-url http://127.0.0.1:PORT/v1 --key sk_test_...
//   DRIP_BASE_URL=http://127.0.0.1:PORT/v1 DRIP_API_KEY=sk_test_... node run-methods.mjs
//   node run-methods.mjs --list     # {"prototype": [...], "exercised": [...]} and exit, no server needed
//
// Webhook deliveries go to a receiver this script starts on 127.0.0.1 (loopback only).

import { createServer } from 'node:http';
import { Drip } from '@drip-sdk/node';

const PER_METHOD_MS = 10_000;
const OVERALL_MS = 60_000;

function option(name, envName) {
  const index = process.argv.indexOf(name);
  if (index !== -1 && index + 1 < process.argv.length) return process.argv[index + 1];
  return process.env[envName];
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

let serial = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++serial}`;

// A loopback webhook receiver: each POST is queued as {body, signature} and answered 200.
function startReceiver() {
  const deliveries = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const delivery = { body: Buffer.concat(chunks).toString('utf8'), signature: req.headers['x-drip-signature'] ?? '' };
      const waiter = waiters.shift();
      if (waiter) waiter(delivery);
      else deliveries.push(delivery);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}/hook`,
        next(timeoutMs) {
          if (deliveries.length) return Promise.resolve(deliveries.shift());
          return new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error('no webhook delivery within timeout')), timeoutMs);
            waiters.push((delivery) => {
              clearTimeout(timer);
              res(delivery);
            });
          });
        },
        close: () => new Promise((res) => { server.closeAllConnections?.(); server.close(() => res()); }),
      });
    });
  });
}

// Lazily created resources, made through the SDK and reused; a failed creation is cached as a rejection so
// every dependent method reports the same cause.
function makeContext(drip, hookUrl, baseUrl, apiKey) {
  const cache = new Map();
  const once = (name, make) => {
    if (!cache.has(name)) {
      const promise = Promise.resolve().then(make);
      promise.catch(() => {});
      cache.set(name, promise);
    }
    return cache.get(name).catch((error) => {
      throw new Error(`prerequisite ${name} failed: ${error?.message ?? error}`);
    });
  };
  const ctx = {
    hookUrl,
    newCustomerId: async () => (await drip.createCustomer({ externalCustomerId: unique('node') })).id,
    customerId: () => once('customer', ctx.newCustomerId),
    workflowId: () => once('workflow', async () => (await drip.createWorkflow({ name: 'Node flow', slug: 'node-flow' })).id),
    runId: () =>
      once('run', async () => (await drip.startRun({ customerId: await ctx.customerId(), workflowId: await ctx.workflowId() })).id),
    chargeId: () =>
      once('charge', async () => (await drip.charge({ customerId: await ctx.customerId(), meter: 'api_calls', quantity: 2 })).charge.id),
    webhookId: () => once('webhook', async () => (await drip.createWebhook({ url: hookUrl, events: ['charge.succeeded'] })).id),
    planId: () => once('plan', async () => (await drip.createEntitlementPlan({ name: 'Node plan', slug: unique('node-plan') })).id),
    ruleId: () =>
      once('rule', async () =>
        (await drip.addEntitlementRule(await ctx.planId(), { featureKey: 'searches', limitType: 'COUNT', period: 'MONTHLY', limitValue: 1000 })).id),
    entitledCustomerId: () =>
      once('entitled', async () => {
        const customerId = await ctx.newCustomerId();
        await ctx.ruleId();
        await drip.assignCustomerEntitlement(customerId, { planId: await ctx.planId() });
        return customerId;
      }),
    contractId: () =>
      once('contract', async () =>
        (await drip.createContract({ customerId: await ctx.customerId(), name: 'Node contract', startDate: '2026-01-01T00:00:00.000Z' })).id),
    newSubscriptionId: async () =>
      (await drip.createSubscription({ customerId: await ctx.customerId(), name: 'Node Pro', interval: 'MONTHLY', priceUsdc: 29 })).id,
    subscriptionId: () => once('subscription', ctx.newSubscriptionId),
    // An execution-event id: from the ledger after a charge and a run event, else one POSTed to /v1/events
    // (the SDK has no method for POST /events; drip-api.md §5.8 records this live call shape).
    eventId: () =>
      once('event', async () => {
        await ctx.chargeId();
        await drip.emitEvent({ runId: await ctx.runId(), eventType: 'llm.call', quantity: 3 });
        const customerId = await ctx.customerId();
        const listed = await drip.listEvents({ customerId });
        if (listed.data.length > 0) return listed.data[0].id;
        const response = await fetch(`${baseUrl}/events`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${apiKey}` },
          body: JSON.stringify({ customerId, actionName: 'node.seed', idempotencyKey: unique('node-seed') }),
          signal: AbortSignal.timeout(PER_METHOD_MS),
        });
        check(response.status === 201, `POST /events answered ${response.status}`);
        return (await response.json()).id;
      }),
    // The business withdraws what it has earned: one confirmed charge of 30 USDC (30,000 api_calls) first.
    earnings: () =>
      once('earnings', async () =>
        drip.charge({ customerId: await ctx.newCustomerId(), meter: 'api_calls', quantity: 30000 })),
    withdrawalId: () =>
      once('withdrawal', async () => {
        await ctx.earnings();
        return (await drip.withdraw({ amountUsdc: '10.00', idempotencyKey: unique('node-wd') })).id;
      }),
  };
  return ctx;
}

// One entry per SDK method, in dependency order (customers → usage → runs → webhooks → …).
function methods(drip, ctx, receiver) {
  return {
    ping: async () => check((await drip.ping()).ok === true, 'ping ok'),
    createCustomer: async () => {
      const externalCustomerId = unique('node-create');
      const customer = await drip.createCustomer({ externalCustomerId, metadata: { tier: 'pro' } });
      check(customer.id && customer.externalCustomerId === externalCustomerId, 'customer echoes externalCustomerId');
    },
    getCustomer: async () => check((await drip.getCustomer(await ctx.customerId())).id === (await ctx.customerId()), 'same id'),
    listCustomers: async () => {
      const id = await ctx.customerId();
      check((await drip.listCustomers({ limit: 100 })).data.some((c) => c.id === id), 'listed');
    },
    getOrCreateCustomer: async () => {
      const external = unique('node-goc');
      const first = await drip.getOrCreateCustomer(external);
      check((await drip.getOrCreateCustomer(external)).id === first.id, 'second call resolves the same customer');
    },
    getBalance: async () => {
      const balance = await drip.getBalance(await ctx.customerId());
      check(typeof balance.balanceUsdc === 'string', 'balanceUsdc is a string');
    },
    setCustomerSpendingCap: async () => {
      const cap = await drip.setCustomerSpendingCap(await ctx.customerId(), { capType: 'DAILY_CHARGE_LIMIT', limitValue: 50 });
      check(cap.id && cap.capType === 'DAILY_CHARGE_LIMIT' && Number(cap.limitValue) === 50, 'cap echoed');
    },
    getCustomerSpendingCaps: async () => {
      const customerId = await ctx.newCustomerId();
      const cap = await drip.setCustomerSpendingCap(customerId, { capType: 'MONTHLY_CHARGE_LIMIT', limitValue: 500 });
      check((await drip.getCustomerSpendingCaps(customerId)).caps.some((c) => c.id === cap.id), 'listed');
    },
    removeCustomerSpendingCap: async () => {
      const customerId = await ctx.newCustomerId();
      const cap = await drip.setCustomerSpendingCap(customerId, { capType: 'SINGLE_CHARGE_LIMIT', limitValue: 5, autoBlock: false });
      check((await drip.removeCustomerSpendingCap(customerId, cap.id)).success === true, 'success');
    },
    provisionCustomer: async () => check((await drip.provisionCustomer(await ctx.newCustomerId())) != null, 'a body'),
    syncCustomerBalance: async () => check((await drip.syncCustomerBalance(await ctx.customerId())) != null, 'a body'),
    assignCustomerEntitlement: async () => {
      const planId = await ctx.planId();
      const assigned = await drip.assignCustomerEntitlement(await ctx.newCustomerId(), { planId, overrides: { searches: { limitValue: 5 } } });
      check(assigned.planId === planId, 'planId echoed');
    },
    getCustomerEntitlement: async () =>
      check((await drip.getCustomerEntitlement(await ctx.entitledCustomerId())).planId === (await ctx.planId()), 'planId'),
    checkEntitlement: async () => {
      const result = await drip.checkEntitlement({ customerId: await ctx.entitledCustomerId(), featureKey: 'searches', quantity: 1 });
      check(result.allowed === true && result.featureKey === 'searches', 'allowed');
    },
    createContract: async () => {
      const contract = await drip.createContract({
        customerId: await ctx.customerId(),
        name: 'Node annual',
        startDate: '2026-01-01T00:00:00.000Z',
        endDate: '2099-01-01T00:00:00.000Z',
        minimumUsdc: '100.00',
        discountPct: 10,
        includedUnits: { api_calls: 1000 },
      });
      check(contract.id && contract.status === 'ACTIVE', 'active contract');
    },
    listContracts: async () => {
      const id = await ctx.contractId();
      check((await drip.listContracts({ customerId: await ctx.customerId() })).contracts.some((c) => c.id === id), 'listed');
    },
    getContract: async () => check((await drip.getContract(await ctx.contractId())).id === (await ctx.contractId()), 'same id'),
    updateContract: async () => check((await drip.updateContract(await ctx.contractId(), { name: 'Node renamed' })).name === 'Node renamed', 'renamed'),
    deleteContract: async () => {
      const contract = await drip.createContract({ customerId: await ctx.customerId(), name: 'Node doomed', startDate: '2026-01-01T00:00:00.000Z' });
      check((await drip.deleteContract(contract.id)) != null, 'a body');
    },
    addContractOverride: async () => {
      const override = await drip.addContractOverride(await ctx.contractId(), { unitType: 'tokens', unitPriceUsd: '0.00005' });
      check(override.unitType === 'tokens', 'unitType echoed');
    },
    removeContractOverride: async () => {
      await drip.addContractOverride(await ctx.contractId(), { unitType: 'api_calls', unitPriceUsd: '0.0005' });
      check((await drip.removeContractOverride(await ctx.contractId(), 'api_calls')) != null, 'a body');
    },
    createEntitlementPlan: async () => {
      const plan = await drip.createEntitlementPlan({ name: 'Node starter', slug: unique('node-starter'), description: 'Starter' });
      check(plan.id && plan.name === 'Node starter', 'plan echoed');
    },
    listEntitlementPlans: async () => {
      const id = await ctx.planId();
      check((await drip.listEntitlementPlans()).plans.some((p) => p.id === id), 'listed');
    },
    getEntitlementPlan: async () => check((await drip.getEntitlementPlan(await ctx.planId())).id === (await ctx.planId()), 'same id'),
    updateEntitlementPlan: async () =>
      check((await drip.updateEntitlementPlan(await ctx.planId(), { description: 'Updated' })).description === 'Updated', 'updated'),
    deleteEntitlementPlan: async () => {
      const plan = await drip.createEntitlementPlan({ name: 'Node doomed plan', slug: unique('node-doomed') });
      check((await drip.deleteEntitlementPlan(plan.id)) != null, 'a body');
    },
    addEntitlementRule: async () => {
      const planId = await ctx.planId();
      const rule = await drip.addEntitlementRule(planId, { featureKey: 'exports', limitType: 'COUNT', period: 'DAILY', limitValue: 10 });
      check(rule.id && rule.planId === planId && rule.featureKey === 'exports', 'rule echoed');
    },
    listEntitlementRules: async () => {
      const id = await ctx.ruleId();
      check((await drip.listEntitlementRules(await ctx.planId())).rules.some((r) => r.id === id), 'listed');
    },
    updateEntitlementRule: async () =>
      check(Number((await drip.updateEntitlementRule(await ctx.ruleId(), { limitValue: 2000 })).limitValue) === 2000, 'updated'),
    deleteEntitlementRule: async () => {
      const rule = await drip.addEntitlementRule(await ctx.planId(), { featureKey: 'uploads', limitType: 'AMOUNT', period: 'MONTHLY', limitValue: 25.5 });
      check((await drip.deleteEntitlementRule(rule.id)) != null, 'a body');
    },
    charge: async () => {
      const result = await drip.charge({ customerId: await ctx.customerId(), meter: 'api_calls', quantity: 3, metadata: { k: 'v' } });
      check(result.success === true && result.charge?.amountUsdc === '0.003000', 'charged 0.003000');
    },
    chargeAsync: async () => {
      const result = await drip.chargeAsync({ customerId: await ctx.customerId(), meter: 'api_calls', quantity: 4 });
      check(result.success === true && result.charge?.id, 'queued charge');
    },
    trackUsage: async () => {
      const result = await drip.trackUsage({ customerId: await ctx.customerId(), meter: 'tokens', quantity: 120, units: 'tokens' });
      check(result.success === true, 'tracked');
    },
    getCharge: async () => check((await drip.getCharge(await ctx.chargeId())).id === (await ctx.chargeId()), 'same id'),
    listCharges: async () => {
      const id = await ctx.chargeId();
      check((await drip.listCharges({ customerId: await ctx.customerId() })).data.some((c) => c.id === id), 'listed');
    },
    wrapApiCall: async () => {
      const wrapped = await drip.wrapApiCall({
        customerId: await ctx.customerId(),
        meter: 'tokens',
        call: async () => ({ tokens: 42 }),
        extractUsage: (response) => response.tokens,
      });
      check(wrapped.result.tokens === 42 && wrapped.charge.success === true, 'charged the call');
    },
    createStreamMeter: async () => {
      const meter = drip.createStreamMeter({ customerId: await ctx.customerId(), meter: 'tokens' });
      await meter.add(100);
      await meter.add(50);
      const flushed = await meter.flush();
      check(flushed.success === true && flushed.quantity === 150, 'flushed 150');
    },
    listEvents: async () => {
      const eventId = await ctx.eventId();
      const listed = await drip.listEvents({ customerId: await ctx.customerId(), limit: 50 });
      check(listed.data.some((e) => e.id === eventId), 'event listed');
    },
    getEvent: async () => check((await drip.getEvent(await ctx.eventId())).id === (await ctx.eventId()), 'same id'),
    getEventTrace: async () => check((await drip.getEventTrace(await ctx.eventId())) != null, 'a trace'),
    estimateFromUsage: async () => {
      await ctx.chargeId();
      const estimate = await drip.estimateFromUsage({
        periodStart: new Date('2000-01-01T00:00:00Z'),
        periodEnd: '2999-01-01T00:00:00Z',
        customerId: await ctx.customerId(),
      });
      check(estimate.lineItems.length > 0, 'line items');
    },
    estimateFromHypothetical: async () => {
      const estimate = await drip.estimateFromHypothetical({ items: [{ usageType: 'api_calls', quantity: 1000 }] });
      check(estimate.estimatedTotalUsdc === '1.000000', 'total 1.000000');
    },
    checkout: async () => {
      const session = await drip.checkout({ amount: 2500, returnUrl: 'https://app.example/back', customerId: await ctx.customerId() });
      check(session.id && session.url && session.amountUsd === 25, 'session');
    },
    withdraw: async () => {
      await ctx.earnings();
      const withdrawal = await drip.withdraw({ amountUsdc: '10.00', idempotencyKey: unique('node-withdraw'), bankDescription: 'payout' });
      check(withdrawal.id && withdrawal.amountUsdc, 'withdrawal');
    },
    listWithdrawals: async () => {
      const id = await ctx.withdrawalId();
      check((await drip.listWithdrawals({ limit: 50 })).withdrawals.some((w) => w.id === id), 'listed');
    },
    estimateWithdrawalFee: async () => {
      const fee = await drip.estimateWithdrawalFee('100.00');
      check(fee.amountUsdc && fee.feeUsdc && fee.netAmountUsdc, 'fee estimate');
    },
    cancelWithdrawal: async () => {
      await ctx.earnings();
      const withdrawal = await drip.withdraw({ amountUsdc: '5.00', idempotencyKey: unique('node-cancel') });
      check((await drip.cancelWithdrawal(withdrawal.id)).id === withdrawal.id, 'same id');
    },
    createWebhook: async () => {
      const created = await drip.createWebhook({ url: ctx.hookUrl, events: ['customer.created'], description: 'node' });
      check(created.id && created.secret?.startsWith('whsec_'), 'secret');
    },
    updateWebhook: async () => {
      const updated = await drip.updateWebhook(await ctx.webhookId(), { description: 'renamed', events: ['charge.succeeded', 'charge.failed'] });
      check(updated.description === 'renamed' && updated.events.length === 2, 'updated');
    },
    listWebhooks: async () => {
      const id = await ctx.webhookId();
      check((await drip.listWebhooks()).data.some((w) => w.id === id), 'listed');
    },
    getWebhook: async () => check((await drip.getWebhook(await ctx.webhookId())).url === ctx.hookUrl, 'same url'),
    deleteWebhook: async () => {
      const created = await drip.createWebhook({ url: ctx.hookUrl, events: ['charge.failed'] });
      check((await drip.deleteWebhook(created.id)).success === true, 'success');
    },
    testWebhook: async () => {
      const created = await drip.createWebhook({ url: ctx.hookUrl, events: ['charge.refunded'] });
      const result = await drip.testWebhook(created.id);
      check(result.status === 'DELIVERED', `status DELIVERED, got ${result.status}`);
      // Deliveries for other webhooks may arrive too: wait for one this secret signs.
      for (;;) {
        const delivery = await receiver.next(PER_METHOD_MS / 2);
        if (Drip.verifyWebhookSignatureSync(delivery.body, delivery.signature, created.secret)) break;
      }
      await drip.deleteWebhook(created.id);
    },
    rotateWebhookSecret: async () =>
      check((await drip.rotateWebhookSecret(await ctx.webhookId())).secret?.startsWith('whsec_'), 'new secret'),
    createSubscription: async () => {
      const sub = await drip.createSubscription({
        customerId: await ctx.customerId(),
        name: 'Node Team',
        interval: 'ANNUAL',
        priceUsdc: 299,
        description: 'yearly',
        trialDays: 14,
        includedUsage: 1000,
      });
      check(sub.id && sub.customerId === (await ctx.customerId()), 'subscription');
    },
    getSubscription: async () =>
      check((await drip.getSubscription(await ctx.subscriptionId())).id === (await ctx.subscriptionId()), 'same id'),
    listSubscriptions: async () => {
      const id = await ctx.subscriptionId();
      check((await drip.listSubscriptions({ customerId: await ctx.customerId() })).data.some((s) => s.id === id), 'listed');
    },
    updateSubscription: async () =>
      check((await drip.updateSubscription(await ctx.subscriptionId(), { name: 'Node Pro+', priceUsdc: 39 })).name === 'Node Pro+', 'renamed'),
    cancelSubscription: async () =>
      check((await drip.cancelSubscription(await ctx.newSubscriptionId(), { immediate: true })).status === 'CANCELLED', 'cancelled'),
    pauseSubscription: async () => check((await drip.pauseSubscription(await ctx.newSubscriptionId())).status === 'PAUSED', 'paused'),
    resumeSubscription: async () => {
      const id = await ctx.newSubscriptionId();
      await drip.pauseSubscription(id, { resumeDate: '2099-01-01T00:00:00.000Z' });
      check((await drip.resumeSubscription(id)).status === 'ACTIVE', 'active again');
    },
    createWorkflow: async () => {
      const slug = unique('node-wf');
      check((await drip.createWorkflow({ name: 'Node WF', slug, productSurface: 'AGENT' })).slug === slug, 'slug echoed');
    },
    listWorkflows: async () => {
      const id = await ctx.workflowId();
      check((await drip.listWorkflows()).data.some((w) => w.id === id), 'listed');
    },
    startRun: async () => {
      const run = await drip.startRun({ customerId: await ctx.customerId(), workflowId: await ctx.workflowId(), correlationId: 'node-corr' });
      check(run.id && run.status === 'PENDING', 'pending run');
    },
    endRun: async () => {
      const run = await drip.startRun({ customerId: await ctx.customerId(), workflowId: await ctx.workflowId() });
      check((await drip.endRun(run.id, { status: 'COMPLETED' })).status === 'COMPLETED', 'completed');
    },
    emitEvent: async () => {
      const event = await drip.emitEvent({ runId: await ctx.runId(), eventType: 'tool.call', quantity: 1, costUnits: 0.1 });
      check(event.id && event.runId === (await ctx.runId()), 'event');
    },
    emitEventsBatch: async () =>
      check((await drip.emitEventsBatch([{ runId: await ctx.runId(), eventType: 'step', quantity: 2 }])).created === 1, 'one created'),
    getRun: async () => check((await drip.getRun(await ctx.runId())).id === (await ctx.runId()), 'same id'),
    getRunTimeline: async () => {
      await drip.emitEvent({ runId: await ctx.runId(), eventType: 'timeline.step', quantity: 1 });
      const timeline = await drip.getRunTimeline(await ctx.runId(), { limit: 100 });
      check(timeline.runId === (await ctx.runId()) && timeline.events.length > 0, 'timeline with events');
    },
    recordRun: async () => {
      const recorded = await drip.recordRun({
        customerId: await ctx.customerId(),
        workflow: 'node-recorded',
        events: [{ eventType: 'step', quantity: 1 }],
        status: 'COMPLETED',
      });
      check(recorded.events.created === 1, 'one event');
    },
    listMeters: async () => check((await drip.listMeters()).data.some((m) => m.meter === 'api_calls'), 'api_calls meter'),
    createPortalSession: async () => {
      const session = await drip.createPortalSession({ customerId: await ctx.customerId(), expiresInMinutes: 30 });
      check(session.id && session.url, 'portal session');
    },
    revokePortalSession: async () => {
      const session = await drip.createPortalSession({ customerId: await ctx.customerId() });
      check((await drip.revokePortalSession(session.id)).success === true, 'revoked');
    },
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(error) {
  if (error == null) return 'unknown error';
  const parts = [error.message ?? String(error)];
  if (error.statusCode !== undefined) parts.push(`status ${error.statusCode}`);
  if (error.code) parts.push(`code ${error.code}`);
  return parts.join(' | ');
}

async function main() {
  if (process.argv.includes('--list')) {
    const prototype = Object.getOwnPropertyNames(Drip.prototype).filter((name) => name !== 'constructor');
    const placeholder = new Drip({ apiKey: 'sk_test_listonly', baseUrl: 'http://127.0.0.1:9/v1', resilience: false });
    const exercised = Object.keys(methods(placeholder, {}, null));
    process.stdout.write(`${JSON.stringify({ prototype, exercised })}\n`);
    return;
  }
  const baseUrl = option('--base-url', 'DRIP_BASE_URL');
  const apiKey = option('--key', 'DRIP_API_KEY');
  if (!baseUrl || !apiKey) {
    process.stderr.write('usage: node run-methods.mjs --base-url URL/v1 --key sk_... (or DRIP_BASE_URL, DRIP_API_KEY)\n');
    process.exitCode = 2;
    return;
  }
  const receiver = await startReceiver();
  // Resilience off: its circuit breaker would turn one failing route into failures of unrelated methods.
  const drip = new Drip({ apiKey, baseUrl, timeout: PER_METHOD_MS, resilience: false });
  const ctx = makeContext(drip, receiver.url, baseUrl, apiKey);
  const deadline = Date.now() + OVERALL_MS;
  try {
    for (const [method, call] of Object.entries(methods(drip, ctx, receiver))) {
      let ok = false;
      let error = '';
      const left = deadline - Date.now();
      if (left <= 0) {
        error = 'not run: overall deadline passed';
      } else {
        try {
          await withTimeout(call(), Math.min(PER_METHOD_MS, left), method);
          ok = true;
        } catch (caught) {
          error = describe(caught);
        }
      }
      process.stdout.write(`${JSON.stringify({ method, ok, error })}\n`);
    }
  } finally {
    await receiver.close();
  }
}

main().catch((error) => {
  process.stderr.write(`run-methods.mjs crashed: ${error?.stack ?? error}\n`);
  process.exitCode = 1;
});
