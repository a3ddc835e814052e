"""Test helper for the AWS provider tests: talks to a moto server with boto3.

  moto_state.py <endpoint> setup <cluster> <instances>   -> {"instances": [...], "subnets": [...]}
  moto_state.py <endpoint> state                          -> every NLB with its target groups
  moto_state.py <endpoint> break <lb-name>                -> deletes the NLB's listeners and target groups
  moto_state.py <endpoint> watch <seconds>                -> one line of JSON (`snapshot`) per poll, forever

`watch` is what the lab cloud (lab/src/cloud/aws.rs, which embeds this file) reads moto with.
"""
import json
import sys
import time

import boto3
import botocore.exceptions

endpoint, command = sys.argv[1], sys.argv[2]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2 = boto3.client("ec2", **kw)
elb = boto3.client("elbv2", **kw)



def consistent(read):
    """`read()` again when an NLB, listener or target group went away between two of its calls
    (the controller deleting one while this reads): a snapshot of one moment, not a mix."""
    for _ in range(50):
        try:
            return read()
        except botocore.exceptions.ClientError as error:
            if not error.response["Error"]["Code"].endswith("NotFound"):
                raise
            time.sleep(0.1)
    return read()


if command == "setup":
    cluster, count = sys.argv[3], int(sys.argv[4])
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for i, zone in enumerate(["us-east-1a", "us-east-1b"]):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)
        subnet_id = subnet["Subnet"]["SubnetId"]
        ec2.create_tags(Resources=[subnet_id], Tags=[{"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"}])
        subnets.append(subnet_id)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    reservation = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, SubnetId=subnets[0])
    print(json.dumps({"instances": [i["InstanceId"] for i in reservation["Instances"]], "subnets": subnets}))
elif command == "state":
    def state():
        out = []
        for lb in elb.describe_load_balancers()["LoadBalancers"]:
            arn = lb["LoadBalancerArn"]
            tags = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
            groups = []
            for tg in elb.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]:
                targets = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
                groups.append({
                    "name": tg["TargetGroupName"], "protocol": tg["Protocol"], "port": tg["Port"],
                    "health": [tg.get("HealthCheckProtocol"), tg.get("HealthCheckPort"), tg.get("HealthCheckPath"),
                               tg.get("HealthCheckIntervalSeconds"), tg.get("HealthCheckTimeoutSeconds"),
                               tg.get("HealthyThresholdCount"), tg.get("UnhealthyThresholdCount")],
                    "targets": sorted([t["Target"]["Id"], t["Target"]["Port"]] for t in targets),
                })
            listeners = [[l["Protocol"], l["Port"]] for l in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]]
            out.append({"name": lb["LoadBalancerName"], "dns": lb["DNSName"], "scheme": lb["Scheme"],
                        "tags": {t["Key"]: t["Value"] for t in tags}, "target_groups": groups,
                        "listeners": sorted(listeners)})
        all_groups = [tg["TargetGroupName"] for tg in elb.describe_target_groups()["TargetGroups"]]
        return {"load_balancers": out, "all_target_groups": all_groups}

    print(json.dumps(consistent(state)))
elif command == "watch":
    def snapshot():
        """Every NLB with its listeners (and the target group each forwards to) and its target
        groups with their health-check settings and registered targets."""
        out = []
        for lb in elb.describe_load_balancers()["LoadBalancers"]:
            arn = lb["LoadBalancerArn"]
            groups = []
            for tg in elb.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]:
                health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
                groups.append({
                    "arn": tg["TargetGroupArn"], "name": tg["TargetGroupName"],
                    "protocol": tg["Protocol"], "port": tg["Port"],
                    "health_check": {
                        "protocol": tg.get("HealthCheckProtocol"), "port": tg.get("HealthCheckPort"),
                        "path": tg.get("HealthCheckPath"),
                        "interval": tg.get("HealthCheckIntervalSeconds"),
                        "timeout": tg.get("HealthCheckTimeoutSeconds"),
                        "healthy": tg.get("HealthyThresholdCount"),
                        "unhealthy": tg.get("UnhealthyThresholdCount"),
                    },
                    "targets": sorted([t["Target"]["Id"], t["Target"]["Port"]]
                                      for t in health["TargetHealthDescriptions"]),
                })
            listeners = []
            for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
                forward = [a.get("TargetGroupArn") for a in listener.get("DefaultActions", [])
                           if a.get("Type") == "forward"]
                listeners.append({"protocol": listener["Protocol"], "port": listener["Port"],
                                  "target_group": forward[0] if forward else None})
            out.append({"name": lb["LoadBalancerName"], "dns": lb["DNSName"],
                        "listeners": listeners, "target_groups": groups})
        return {"load_balancers": out}

    every = float(sys.argv[3])
    while True:
        try:
            print(json.dumps(snapshot()), flush=True)
        except BrokenPipeError:
            break
        except Exception as error:  # moto restarting, a group deleted mid-read: try again
            print(json.dumps({"error": str(error)}), flush=True)
        time.sleep(every)
elif command == "break":
    arn = elb.describe_load_balancers(Names=[sys.argv[3]])["LoadBalancers"][0]["LoadBalancerArn"]
    groups = elb.describe_target_groups(LoadBalancerArn=arn)["TargetGroups"]
    for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
        elb.delete_listener(ListenerArn=listener["ListenerArn"])
    for tg in groups:
        elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    print(json.dumps({"deleted": len(groups)}))
