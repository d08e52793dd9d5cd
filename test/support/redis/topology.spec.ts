import { Redis } from 'ioredis';
import { startSentinelTopology, type SentinelTopology } from './topology';

/** The helper's own checks: the topology is what it claims, and a failover really moves the master. */
describe('startSentinelTopology', () => {
  let topology: SentinelTopology;
  const clients: Redis[] = [];

  beforeAll(async () => {
    topology = await startSentinelTopology();
  }, 30_000);
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await topology?.stop();
  });

  it('starts a primary, an in-sync replica and 3 Sentinels that know both', async () => {
    const { primary, replica, sentinels, masterName } = topology;
    expect(sentinels).toHaveLength(3);
    expect(new Set([primary.port, replica.port, ...sentinels.map((s) => s.port)]).size).toBe(5);
    expect(await primary.command('ROLE')).toMatch(/^master\n/);
    expect(await replica.command('INFO', 'replication')).toContain(`master_port:${primary.port}`);
    for (const { port } of sentinels) {
      const address = await topology.sentinelProcesses
        .find((s) => s.port === port)!
        .command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName);
      expect(address).toBe(`127.0.0.1\n${primary.port}`);
    }
    console.log(`sentinel topology started in ${Math.round(topology.timings.startMs)} ms`);
  });

  it('serves an ioredis Sentinel-mode client; a write on the primary reaches the replica', async () => {
    const client = new Redis({ sentinels: topology.sentinels, name: topology.masterName, maxRetriesPerRequest: 1 });
    clients.push(client);
    client.on('error', () => undefined);
    expect(await client.set('topology:key', 'v1')).toBe('OK');
    await topology.waitForReplication();
    expect(await topology.replica.command('GET', 'topology:key')).toBe('v1');
  });

  it('failover() moves the master to the replica; the Sentinel-mode client follows; the old primary becomes a replica', async () => {
    const before = { primary: topology.primary, replica: topology.replica };
    const client = new Redis({ sentinels: topology.sentinels, name: topology.masterName });
    clients.push(client);
    client.on('error', () => undefined);
    await client.set('failover:key', 'before');
    await topology.waitForReplication();

    await topology.failover();
    console.log(
      `SENTINEL FAILOVER to all sentinels reporting the new master: ${Math.round(topology.timings.lastFailoverMs!)} ms`,
    );
    expect(topology.primary).toBe(before.replica);
    expect(topology.replica).toBe(before.primary);
    expect(await before.replica.command('ROLE')).toMatch(/^master\n/);
    expect(await before.replica.command('GET', 'failover:key')).toBe('before');

    // The client is told to reconnect (+switch-master) and ends up writing to the new primary.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await client.set('failover:key', 'after').catch(() => undefined);
      if (ok === 'OK' && (await before.replica.command('GET', 'failover:key')) === 'after') break;
      if (Date.now() > deadline) throw new Error('the Sentinel-mode client did not follow the failover');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const rejoin = performance.now();
    await topology.waitForReplication();
    console.log(`old primary converted to replica and in sync after ${Math.round(performance.now() - rejoin)} ms more`);
    expect(await before.primary.command('ROLE')).toMatch(/^slave\n/);
    expect(await before.primary.command('GET', 'failover:key')).toBe('after');

    // And back again.
    await topology.failover();
    expect(topology.primary).toBe(before.primary);
  }, 60_000);
});
