// Copyright dubbo-istiod authors.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Workload is a Pod as a kubelet would have started it: scheduled, Running, Ready and
// with its IP in status (no kubelet runs here, so the harness writes the status).
type Workload struct {
	Name, Namespace, IP string
	Labels              map[string]string
	ServiceAccount      string // default "default"
}

// CreatePod creates the Pod and sets its status.
func (c *Cluster) CreatePod(ctx context.Context, w Workload) (*corev1.Pod, error) {
	sa := w.ServiceAccount
	if sa == "" {
		sa = "default"
	}
	if err := c.CreateServiceAccount(ctx, w.Namespace, sa); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace, Labels: w.Labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: sa,
			NodeName:           "harness-node",
			Containers:         []corev1.Container{{Name: "app", Image: "app:test"}},
		},
	}
	pods := c.Client.Kube().CoreV1().Pods(w.Namespace)
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", w.Namespace, w.Name, err)
	}
	now := metav1.Now()
	created.Status = corev1.PodStatus{
		Phase:  corev1.PodRunning,
		PodIP:  w.IP,
		PodIPs: []corev1.PodIP{{IP: w.IP}},
		HostIP: "127.0.0.1",
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		StartTime: &now,
	}
	updated, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s status: %w", w.Namespace, w.Name, err)
	}
	return updated, nil
}

// ServicePort is one port of a Service and of its EndpointSlice.
type ServicePort struct {
	Name        string
	Port        int32
	TargetPort  int32  // default Port
	AppProtocol string // e.g. "dubbo"
	Protocol    corev1.Protocol
}

// CreateService creates a ClusterIP Service selecting selector and, as the EndpointSlice
// controller would, one slice with the ready endpoints of pods.
func (c *Cluster) CreateService(ctx context.Context, ns, name string, selector map[string]string,
	ports []ServicePort, pods ...*corev1.Pod,
) (*corev1.Service, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Selector: selector, Type: corev1.ServiceTypeClusterIP},
	}
	for _, p := range ports {
		sp := corev1.ServicePort{Name: p.Name, Port: p.Port, TargetPort: intstr.FromInt32(target(p)), Protocol: proto(p)}
		if p.AppProtocol != "" {
			sp.AppProtocol = &p.AppProtocol
		}
		svc.Spec.Ports = append(svc.Spec.Ports, sp)
	}
	created, err := c.Client.Kube().CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create service %s/%s: %w", ns, name, err)
	}
	if err := c.SetEndpoints(ctx, created, ports, pods...); err != nil {
		return nil, err
	}
	return created, nil
}

// SetEndpoints creates or replaces the Service's EndpointSlice with pods' endpoints.
func (c *Cluster) SetEndpoints(ctx context.Context, svc *corev1.Service, ports []ServicePort, pods ...*corev1.Pod) error {
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      svc.Name + "-harness",
			Namespace: svc.Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   "dubbo-istiod-test-harness",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range ports {
		name, port, protocol := p.Name, target(p), proto(p)
		ep := discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &protocol}
		if p.AppProtocol != "" {
			ep.AppProtocol = &p.AppProtocol
		}
		slice.Ports = append(slice.Ports, ep)
	}
	for _, pod := range pods {
		ep := discoveryv1.Endpoint{
			Addresses:  []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		}
		if node := pod.Spec.NodeName; node != "" {
			ep.NodeName = &node
		}
		slice.Endpoints = append(slice.Endpoints, ep)
	}
	slices := c.Client.Kube().DiscoveryV1().EndpointSlices(svc.Namespace)
	existing, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
	if err == nil {
		slice.ResourceVersion = existing.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
	} else {
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("endpoint slice %s/%s: %w", svc.Namespace, slice.Name, err)
	}
	return nil
}

func target(p ServicePort) int32 {
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Port
}

func proto(p ServicePort) corev1.Protocol {
	if p.Protocol != "" {
		return p.Protocol
	}
	return corev1.ProtocolTCP
}
